import ArgumentParser
import Dispatch
import FaultlineCore
import FaultlineEngine
import FaultlineFaults
import FaultlineJournal
import FaultlineProbes
import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `faultline run FILE`: the game day itself.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a scenario here: check the steady state, inject the faults on their timeline, watch, revert everything, report.",
        discussion: """
            On a terminal it shows the plan first and asks to go on, unless --yes; without a terminal it \
            never asks. Everything injected is reverted on every way out: the end, maxDuration, an abort \
            condition, Ctrl-C/SIGTERM/SIGHUP/SIGQUIT, and even SIGKILL of this process (a guard process reverts from \
            the journal). Exit codes: 0 ok, 1 deviated or aborted, 2 invalid, 3 preflight failed, \
            4 a revert failed (run 'faultline recover'), 5 inconclusive (a fault did not fully act, or a probe \
            has no result from the method), 130 interrupted.

            Example:
              faultline run scenarios/checkout-db-latency.yaml --report out/ --junit out/junit.xml --yes
            """
    )

    @Argument(help: "The scenario file.")
    var file: String

    @Flag(help: "Show the plan and the preflight; inject nothing.")
    var dryRun = false

    @Option(help: "Write report.json, report.md and report.html into this directory.")
    var report: String?

    @Option(help: "Write a JUnit XML file: one test case per probe and per fault revert.")
    var junit: String?

    @Flag(help: "Do not ask before running, even on a terminal.")
    var yes = false

    @OptionGroup var observability: ObservabilityOptions
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        let scenario = try ScenarioFile.loadOrExit(file)
        let grafana: GrafanaAnnotator.Settings?
        do { grafana = try observability.grafana() } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.invalid
        }
        let runID = RunID.random()
        // On a terminal (and with text logs) a live view redraws below the log lines; else one line per event.
        let live: LiveView? = isatty(2) == 1 && global.logFormat == .text ? LiveView { StandardError.write($0) } : nil
        let log = global.eventLog(run: runID, scenario: scenario.metadata.name.rawValue, live: live)
        let journal: Journal
        do { journal = try Journal(directory: global.stateDirectory) } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.preflightFailed
        }
        if let problem = journal.reserveProblem { log.log(RunEvent(.warning, "journal", problem)) }
        let context = DriverContext()
        let (_, left) = try await RecoverCommand.recoverLeftovers(journal: journal, context: context, log: log)

        let facts = await HostFactsReader().read(for: scenario, pins: .init(directory: global.stateDirectory + "/pins", runID: runID))
        let plan = Planner(facts: facts).plan(scenario, runID: runID)
        let preflight = await Preflight().check(scenario)
        // Every target namespace of a network fault is held by a pin for the run; one that cannot be is refused.
        for fault in scenario.spec.faults where fault.type.isNetwork {
            guard let target = fault.target ?? scenario.spec.target, let namespace = facts.namespace(target), namespace.exists, namespace.pin == nil else { continue }
            StandardError.write("faultline: cannot hold \(target) for the run (\(namespace.unreadable ?? "its namespace could not be identified")): run as root, or with CAP_SYS_ADMIN and CAP_SYS_PTRACE; nothing was applied\n")
            throw ExitStatus.preflightFailed
        }
        // What an earlier run left in place blocks this run only where both act on the same thing.
        let claims = ResourceClaims.of(scenario, plan: plan, facts: facts)
        let conflicts = Self.conflicts(left, with: claims)
        for leftover in left where !conflicts.contains(where: { $0.leftover.run.id == leftover.run.id && $0.leftover.name == leftover.name }) {
            log.log(RunEvent(.warning, "leftover", "run \(leftover.run.id) left '\(leftover.name)' in place, which this run does not touch: going on", fault: leftover.name))
        }
        if !conflicts.isEmpty {
            for conflict in conflicts {
                StandardError.write("faultline: '\(conflict.fault)' acts on \(conflict.claim), where run \(conflict.leftover.run.id) left '\(conflict.leftover.name)' in place (its revert failed: \(conflict.leftover.error)); clean it up by hand, then: faultline recover --forget \(conflict.leftover.run.id) \(conflict.leftover.name)\n")
            }
            StandardError.write("faultline: conflicts with what an earlier run left; nothing was applied\n")
            throw ExitStatus.preflightFailed
        }
        if dryRun {
            print(PlanRenderer.text(plan), terminator: "")
            print("\nPreflight:\n" + DoctorCommand.table(preflight), terminator: "")
            if !plan.problems.isEmpty || !preflight.passed { throw ExitStatus.preflightFailed }
            return
        }
        guard plan.problems.isEmpty, preflight.passed else {
            for problem in plan.problems { StandardError.write("faultline: \(problem)\n") }
            for check in preflight.checks where check.status == .missing {
                StandardError.write("faultline: \(check.problem)\n")
            }
            StandardError.write("faultline: preflight failed; nothing was applied\n")
            throw ExitStatus.preflightFailed
        }
        if isatty(0) == 1 && isatty(2) == 1 && !yes {
            FileHandle.standardOutput.write(Data((PlanRenderer.text(plan) + "\nRun it now? [y/N] ").utf8))
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                print("nothing was applied")
                return
            }
        }

        // A run going on now that acts on the same thing: refuse before anything is applied (the locks live as
        // long as this process).
        let locks: ClaimLocks
        do {
            locks = try ClaimLocks.take(claims.values.reduce(into: Set<String>()) { $0.formUnion($1) }, runID: runID,
                                        directory: global.stateDirectory + "/locks")
        } catch let held as ClaimLocks.Held {
            let fault = claims.first { $0.value.contains(held.claim) }?.key ?? "a fault"
            StandardError.write("faultline: '\(fault)' acts on \(held.claim), which \(held.holder) holds now: wait for it to end or abort it; nothing was applied\n")
            throw ExitStatus.preflightFailed
        } catch {
            StandardError.write("faultline: \(error); nothing was applied\n")
            throw ExitStatus.preflightFailed
        }
        defer { withExtendedLifetime(locks) {} }
        let traces: TraceExport?
        do { traces = try observability.traces() } catch {
            // Traces were asked for: a game day without them is not what the operator set up.
            StandardError.write("faultline: cannot set up traces from --otlp-endpoint and the OTEL_* environment: \(error); nothing was applied\n")
            throw ExitStatus.invalid
        }
        let stop = StopSignal()
        let signals = SignalWatcher(stop: stop, log: log)
        var settings = ExperimentRunner.Settings(runID: runID, guardCommand: [facts.executable, "guard", "--run", runID] + global.forwarded)
        settings.tracer = traces?.tracer
        settings.guardLog = global.stateDirectory + "/runs/\(runID)/guard.log"
        let runSettings = settings
        let name = scenario.metadata.name.rawValue
        let couriers = [WebhookNotifier.courier(hooks: WebhookNotifier.hooks(scenario, adding: observability.notify), run: runID, scenario: name, log: log),
                        GrafanaAnnotator.courier(grafana, run: runID, scenario: name, log: log)].compactMap { $0 }
        let result = await EventCourier.around(couriers, log: log) { log in
            await ExperimentRunner(scenario: scenario, plan: plan, settings: runSettings, journal: journal, context: context,
                                   probes: ProbeExecutor(target: scenario.spec.target, executable: facts.executable), log: log, stop: stop,
                                   live: live).run()
        }
        signals.cancel()
        // Everything is reverted by now; the last spans get a few seconds to reach the collector.
        await traces?.shutdown()
        try write(result)
        if result.exitCode != 0 { throw ExitCode(result.exitCode) }
    }

    /// Each fault of this run that acts on something a fault left in place by an earlier run holds.
    static func conflicts(_ left: [RecoverCommand.Leftover], with claims: [String: Set<String>])
        -> [(fault: String, claim: String, leftover: RecoverCommand.Leftover)] {
        var result: [(fault: String, claim: String, leftover: RecoverCommand.Leftover)] = []
        for leftover in left where !leftover.isPin {
            // A fault whose record cannot be read could be anywhere: it blocks every run.
            let held = leftover.fault.map { ResourceClaims.of($0.record) { try? NamespacePin.identity(of: $0).get() } }
            for (fault, wanted) in claims.sorted(by: { $0.key < $1.key }) {
                if let held {
                    if let shared = wanted.intersection(held).sorted().first { result.append((fault, shared, leftover)) }
                } else {
                    result.append((fault, "what an unreadable journal entry may hold", leftover))
                }
            }
        }
        return result
    }

    func write(_ result: RunReport) throws {
        if let report {
            try FileManager.default.createDirectory(atPath: report, withIntermediateDirectories: true)
            try result.json().write(to: URL(fileURLWithPath: report + "/report.json"), options: .atomic)
            try ReportRenderer.markdown(result).write(toFile: report + "/report.md", atomically: true, encoding: .utf8)
            try ReportRenderer.html(result).write(toFile: report + "/report.html", atomically: true, encoding: .utf8)
        }
        if let junit {
            try result.junit().write(toFile: junit, atomically: true, encoding: .utf8)
        }
    }
}

/// Turns SIGINT, SIGTERM, SIGHUP (a dropped SSH session) and SIGQUIT into the same orderly stop: the run
/// reverts everything, writes its report, then exits 130.
final class SignalWatcher {
    /// The signals that stop a run, with the names its log gives them.
    static let stopSignals: [(number: Int32, name: String)] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP"), (SIGQUIT, "SIGQUIT")]

    private let sources: [any DispatchSourceSignal]

    init(stop: StopSignal, log: EventLog) {
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in Self.stopSignals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                log.log(RunEvent(.warning, "interrupted", "\(name): reverting everything, then exiting"))
                stop.fire(.interrupted)
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    func cancel() {
        sources.forEach { $0.cancel() }
    }
}
