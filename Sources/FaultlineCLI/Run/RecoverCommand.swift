import ArgumentParser
import FaultlineCore
import FaultlineEngine
import FaultlineFaults
import FaultlineJournal
import Foundation

/// `faultline recover`: reverts whatever a crashed run left, from the journal.
struct RecoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Revert whatever a crashed run left behind, from the journal.",
        discussion: """
            Runs whose process is still alive are left alone. Exit code 4 when something could not be \
            reverted; the journal keeps it, and the message says how to clean it by hand.

            Example:
              sudo faultline recover
            """
    )

    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let journal: Journal
        do { journal = try Journal(directory: global.stateDirectory) } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.revertFailed
        }
        let log = global.eventLog(run: "-", scenario: "-")
        let recovered = try await Self.recoverLeftovers(journal: journal, context: DriverContext(), log: log)
        if recovered == 0 { print("nothing to recover") }
    }

    /// Reverts orphaned runs, saying what it did; throws exit 4 when something is left.
    @discardableResult
    static func recoverLeftovers(journal: Journal, context: DriverContext, log: EventLog) async throws -> Int {
        let done: [(run: RunEntry, outcomes: [Recovery.Outcome])]
        do { done = try await Recovery(journal: journal, context: context).recoverAll() } catch {
            StandardError.write("faultline: cannot read the journal: \(error)\n")
            throw ExitStatus.revertFailed
        }
        var failed = false
        for (run, outcomes) in done {
            for outcome in outcomes {
                if let error = outcome.error {
                    failed = true
                    log.log(RunEvent(.error, "revert-failed", "left by run \(run.id) (\(run.scenario)) and still there: \(error)", fault: outcome.name))
                } else {
                    log.log(RunEvent(.warning, "recovered", "reverted what run \(run.id) (\(run.scenario)) left", fault: outcome.name))
                }
            }
        }
        if failed { throw ExitStatus.revertFailed }
        return done.reduce(0) { $0 + $1.outcomes.count }
    }
}

/// `faultline guard --run ID`: started by `run`, reverts from the journal if the runner dies or hangs.
struct GuardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "guard", abstract: "Watch a run and revert it if its runner dies.", shouldDisplay: false)

    @Option(help: "The run to watch.") var run: String
    @OptionGroup var global: GlobalOptions

    /// A stop of the whole service (systemd's control group, a container's process group) must not take the guard
    /// down with its runner: it ends by itself once its run is reverted.
    static func ignoreStopSignals() {
        for stop in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] { signal(stop, SIG_IGN) }
    }

    // Stop signals are ignored before this runs, from the process's first instruction (Faultline.prepareProcess).
    func run() async throws {
        let journal = try Journal(directory: global.stateDirectory)
        let scenario = (try? journal.run(run)?.scenario) ?? "-"
        let ok = await RunGuard(journal: journal, runID: run, context: DriverContext(), log: global.eventLog(run: run, scenario: scenario)).watch()
        if !ok { throw ExitStatus.revertFailed }
    }
}
