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
            reverted; the journal keeps it, and the message says how to clean it by hand. What is left blocks \
            only later runs that act on the same interface, directory or process; after cleaning it up by hand, \
            --forget RUN [FAULT] acknowledges it.

            Examples:
              sudo faultline recover
              sudo faultline recover --forget 3f2a9c1d db-latency
            """
    )

    @Option(name: .customLong("forget"), parsing: .upToNextOption,
            help: ArgumentHelp("After cleaning it up by hand: acknowledge what RUN left (every fault, or FAULT), so it blocks nothing any more (kept in the journal, marked forgotten).",
                               valueName: "RUN [FAULT]"))
    var forget: [String] = []

    @OptionGroup var retention: RetentionOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard forget.count <= 2 else { throw ValidationError("--forget takes a run id and at most one fault name, got: \(forget.joined(separator: " "))") }
    }

    func run() async throws {
        let journal: Journal
        // Nothing was checked or reverted: a journal that cannot be opened is a failed precondition (3), not a
        // failed revert (4).
        do { journal = try Journal(directory: global.stateDirectory) } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.preflightFailed
        }
        let log = global.eventLog(run: "-", scenario: "-")
        if let runID = forget.first {
            try forgetEntries(runID: runID, fault: forget.dropFirst().first, journal: journal, log: log)
            retention.prune(journal, log: log)
            return
        }
        let (recovered, left) = try await Self.recoverLeftovers(journal: journal, context: DriverContext(), log: log)
        retention.prune(journal, log: log)
        if !left.isEmpty {
            StandardError.write("faultline: once you have cleaned up what is left by hand: faultline recover --forget RUN [FAULT]\n")
            throw ExitStatus.revertFailed
        }
        if recovered == 0 { print("nothing to recover") }
    }

    /// `--forget RUN [FAULT]`: marks the faults forgotten, with who and when, and removes the run's pins.
    func forgetEntries(runID: String, fault: String?, journal: Journal, log: EventLog) throws {
        let note = "forgotten at \(ISO8601DateFormatter().string(from: Date())) by uid \(getuid()) after a manual cleanup"
        let names: [String]
        do { names = try journal.forget(runID: runID, fault: fault, note: note) } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.revertFailed
        }
        guard !names.isEmpty else {
            StandardError.write("faultline: run \(runID) has \(fault.map { "no fault '\($0)'" } ?? "no fault") that may still be in place\n")
            throw ExitStatus.invalid
        }
        for name in names { log.log(.note(.warning, .forgotten, "acknowledged as cleaned up by hand: \(note)", fault: name)) }
        // The audit log an agent on this state directory serves says who acknowledged what (token local:USER).
        var user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "uid \(getuid())"
        // Under sudo, who asked for it.
        if let asking = ProcessInfo.processInfo.environment["SUDO_USER"], !asking.isEmpty, asking != user { user += " (sudo by \(asking))" }
        let entry = AuditEntry(time: Date(), token: "local:\(user)", role: nil, peer: "local", action: "forget",
                               target: runID + (fault.map { "/" + $0 } ?? ""), status: 0, result: "ok: " + names.joined(separator: ", "))
        do { try journal.audit(entry) } catch {
            log.log(.note(.warning, .audit, "cannot write the audit entry of this --forget: \(error)"))
        }
        if (try? journal.faults(of: runID))?.contains(where: \.state.mayBeActive) == false {
            for failure in Recovery(journal: journal, context: DriverContext()).releasePins(runID: runID) {
                log.log(.note(.error, .pin, "\(failure)"))
            }
        }
        print("forgot \(names.joined(separator: ", ")) of run \(runID)")
    }

    /// Reverts orphaned runs, saying what it did; the count reverted, and what is still in place.
    static func recoverLeftovers(journal: Journal, context: DriverContext, log: EventLog) async throws -> (recovered: Int, left: [Leftovers.Leftover]) {
        do { return try await Leftovers.recover(journal: journal, context: context, log: log) } catch {
            StandardError.write("faultline: cannot read the journal: \(error)\n")
            throw ExitStatus.revertFailed
        }
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
