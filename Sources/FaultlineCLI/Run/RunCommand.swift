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
            has no result from the method), 130 interrupted (or declined at the prompt: nothing applied).

            Example:
              faultline run scenarios/checkout-db-latency.yaml --report out/ --junit out/junit.xml --yes
            """
    )

    @Argument(help: "The scenario file.", completion: .file(extensions: ["yaml", "yml", "json"]))
    var file: String

    @Flag(help: "Show the plan and the preflight; inject nothing.")
    var dryRun = false

    @Option(help: "Write report.json, report.md and report.html into this directory.", completion: .directory)
    var report: String?

    @Option(help: "Write a JUnit XML file: one test case per probe and per fault (an error for one that acted on nothing).", completion: .file())
    var junit: String?

    @Flag(help: "Do not ask before running (it asks whenever standard input is a terminal).")
    var yes = false

    @OptionGroup var observability: ObservabilityOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var retention: RetentionOptions
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
        let live: LiveView? = isatty(2) == 1 && global.logFormat == .text ? LiveView(colour: LiveView.terminalHasColour) { StandardError.write($0) } : nil
        let log = global.eventLog(run: runID, scenario: scenario.metadata.name.rawValue, live: live)
        let journal: Journal
        do { journal = try Journal(directory: global.stateDirectory) } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.preflightFailed
        }
        if let problem = journal.reserveProblem { log.log(.note(.warning, .journal, problem)) }
        var settings = RunSession.Settings(stateDirectory: global.stateDirectory)
        settings.guardArguments = global.forwarded
        settings.notify = observability.notify
        settings.grafana = grafana
        settings.runtimeSocket = runtime.runtimeSocket
        let context = DriverContext()
        var session = RunSession(scenario: scenario, runID: runID, settings: settings, journal: journal, context: context, log: log)
        let prepared: RunSession.Prepared
        do { prepared = try await session.prepare() } catch {
            StandardError.write("faultline: cannot read the journal: \(error)\n")
            throw ExitStatus.revertFailed
        }
        if dryRun {
            print(PlanRenderer.text(prepared.plan), terminator: "")
            print("\nPreflight:\n" + DoctorCommand.table(prepared.preflight), terminator: "")
            for refusal in prepared.refusals {
                if case .cannotHold = refusal { StandardError.write("faultline: \(refusal)\n") }
                if case .leftover = refusal { StandardError.write("faultline: \(refusal)\n") }
            }
            if !prepared.refusals.isEmpty { throw ExitStatus.preflightFailed }
            return
        }
        guard prepared.refusals.isEmpty else {
            for refusal in prepared.refusals { StandardError.write("faultline: \(refusal)\n") }
            let leftovers = prepared.refusals.contains { if case .leftover = $0 { true } else { false } }
            StandardError.write(leftovers ? "faultline: conflicts with what an earlier run left; nothing was applied\n"
                                          : "faultline: preflight failed; nothing was applied\n")
            throw ExitStatus.preflightFailed
        }
        // Asked whenever a person can answer (standard input is a terminal), wherever the output goes: with
        // `2>&1 | tee log` too. The question goes to the terminal itself; no answer is no.
        if isatty(0) == 1 && !yes {
            let plan = prepared.plan
            let faults = plan.faults.map { "\($0.name): \($0.type.rawValue) on \($0.target), +\($0.start) to +\($0.end)" }
            let summary = "About to run \(plan.scenario): \(plan.faults.count) fault(s) for at most \(plan.maxDuration) — " + faults.joined(separator: "; ") + "."
            let terminal = Self.terminal()
            terminal.write(Data((PlanRenderer.text(plan) + "\n" + summary + "\nRun it now? [y/N] ").utf8))
            guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased().trimmingCharacters(in: .whitespaces)) else {
                terminal.write(Data("nothing was applied\n".utf8))
                throw ExitStatus.declined
            }
        }

        let traces: TraceExport?
        do { traces = try observability.traces() } catch {
            // Traces were asked for: a game day without them is not what the operator set up.
            StandardError.write("faultline: cannot set up traces from --otlp-endpoint and the OTEL_* environment: \(error); nothing was applied\n")
            throw ExitStatus.invalid
        }
        settings.tracer = traces?.tracer
        session = RunSession(scenario: scenario, runID: runID, settings: settings, journal: journal, context: context, log: log)

        // A run going on now that acts on the same thing: refuse before anything is applied (the locks live as
        // long as this process).
        let locks: ClaimLocks
        do { locks = try session.lock(prepared) } catch {
            StandardError.write("faultline: \(error); nothing was applied\n")
            throw ExitStatus.preflightFailed
        }
        defer { withExtendedLifetime(locks) {} }
        let stop = StopSignal()
        let signals = SignalWatcher(stop: stop, log: log)
        // Once everything is reverted, the last spans get a few seconds to reach the collector.
        let running = session
        let result = await traces.around { await running.execute(prepared, stop: stop, live: live) }
        signals.cancel()
        retention.prune(journal, log: log)
        try write(result)
        // The live view does not just vanish: it leaves what the run found.
        if live != nil {
            let files = (report.map { directory in RunReport.Format.files.map { directory + "/" + $0.fileName } } ?? []) + (junit.map { [$0] } ?? [])
            StandardError.write(ReportRenderer.terminalSummary(result, files: files))
        }
        if result.exitCode != 0 { throw ExitCode(result.exitCode) }
    }

    func write(_ result: RunReport) throws {
        if let report { try RunSession.writeReports(result, to: report) }
        if let junit { try result.rendered(.junit).write(to: URL(fileURLWithPath: junit), options: .atomic) }
    }

    /// The controlling terminal, for the question before a run; standard output when there is none to open.
    static func terminal() -> FileHandle {
        let fd = open("/dev/tty", O_WRONLY | O_NOCTTY | O_CLOEXEC)
        return fd >= 0 ? FileHandle(fileDescriptor: fd, closeOnDealloc: true) : FileHandle.standardOutput
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
                log.log(.note(.warning, .interrupted, "\(name): reverting everything, then exiting"))
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
