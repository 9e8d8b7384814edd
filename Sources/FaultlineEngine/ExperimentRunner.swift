import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import FaultlineProbes
import FaultlineSystem
import Foundation
import Synchronization
import Tracing

/// Runs one scenario: steady state before, the method (faults on their timeline, probes throughout,
/// abort conditions), steady state after, and the revert of everything still active on every path.
public struct ExperimentRunner: Sendable {
    /// How the run is set up.
    public struct Settings: Sendable {
        public var runID: String
        /// The argv that starts the guard process (`faultline guard ...`); nil runs without one (tests).
        public var guardCommand: [String]?
        /// The guard's own log file (its stdout and stderr), so it never writes to the runner's output, which may be a
        /// pipe whose reader is gone; nil: /dev/null.
        public var guardLog: String?
        /// How long after maxDuration the guard reverts even if the runner still lives.
        public var grace: TimeSpan = .seconds(30)
        /// Where the run's spans go (a span per run, per fault, per probe request); nil: no traces.
        public var tracer: (any Tracer)?
        /// The driver that applies a planned fault (tests give fakes).
        public var drivers: @Sendable (PlannedFault, DriverContext) -> any FaultDriver = { planned, context in
            Drivers.driver(for: planned, context: context)
        }

        public init(runID: String, guardCommand: [String]?) {
            self.runID = runID
            self.guardCommand = guardCommand
        }
    }

    let scenario: Scenario
    let plan: Plan
    let settings: Settings
    let journal: Journal
    let context: DriverContext
    let probes: any ProbeChecking
    let log: EventLog
    let stop: StopSignal
    let live: LiveView?
    let monitor: RunMonitor?

    /// `monitor` and `live` show the method as it goes (the agent's status, the terminal's live view).
    public init(scenario: Scenario, plan: Plan, settings: Settings, journal: Journal, context: DriverContext,
                probes: any ProbeChecking, log: EventLog, stop: StopSignal, monitor: RunMonitor? = nil, live: LiveView? = nil) {
        self.live = live
        self.monitor = monitor
        self.scenario = scenario
        self.plan = plan
        self.settings = settings
        self.journal = journal
        self.context = context
        self.probes = probes
        self.log = log
        self.stop = stop
    }

    public func run() async -> RunReport {
        let span = RunSpan.root(settings.tracer, "run \(scenario.metadata.name)")
        span.set("faultline.scenario", scenario.metadata.name.rawValue)
        span.set("faultline.run.id", settings.runID)
        span.set("faultline.target", scenario.spec.target.map { "\($0)" })
        var report = await run(span)
        report.traceID = span.traceID
        await probes.finish()
        span.set("faultline.run.state", report.state.rawValue)
        span.set("faultline.run.exit_code", Int(report.exitCode))
        span.set("faultline.run.abort_reason", report.abortReason)
        if report.exitCode != 0 { span.fail(report.abortReason ?? report.state.rawValue) }
        span.end()
        return report
    }

    func run(_ span: RunSpan) async -> RunReport {
        let startedAt = Date()
        let ledger = ProbeLedger(steadyState: scenario.spec.steadyState)
        let progress = FaultProgress()
        let clock = ContinuousClock()

        func report(state: RunState, exit: Int32, before: Bool, after: Bool?, abortReason: String? = nil, abortCause: AbortCause? = nil,
                    abortProbe: String? = nil, abortedAt: Double? = nil, recoveredAfter: Double? = nil) -> RunReport {
            var report = RunReport(
                scenario: scenario.metadata.name.rawValue, description: scenario.metadata.description, runID: settings.runID,
                host: ProcessInfo.processInfo.hostName, user: ProcessInfo.processInfo.userName, startedAt: startedAt, endedAt: Date(),
                state: state, exitCode: exit, abortReason: abortReason, abortCause: abortCause, abortProbe: abortProbe, abortedAt: abortedAt, runbook: scenario.metadata.runbook,
                steadyStateBefore: before, steadyStateAfter: after, slo: ledger.verdict(),
                faults: plan.faults.map { planned in
                    let entry = progress[planned.name]
                    return RunReport.FaultRecord(name: planned.name, type: planned.type, target: planned.target, summary: planned.summary,
                                                 injectedAt: entry.injectedAt, revertedAt: entry.revertedAt,
                                                 injectCommands: planned.inject.map(Self.text), revertCommands: planned.revert.map(Self.text),
                                                 state: entry.state, error: entry.error ?? entry.degraded, note: entry.note,
                                                 evidence: entry.evidence)
                },
                probes: ledger.samples, review: RunReport.reviewTemplate)
            report.recoveryWindow = scenario.spec.steadyState?.recoveryWindow?.seconds
            report.recoveredAfter = recoveredAfter
            return report
        }

        // 1. Steady state before: every probe must pass once, or nothing is injected.
        log.log(.started(run: settings.runID, scenario: scenario.metadata.name.rawValue, traceID: span.traceID))
        let before = await checkAll(ledger, phase: .before, at: 0, span: span)
        if stop.reason == .interrupted {
            log.log(.note(.warning, .interrupted, "interrupted before the method: nothing was injected"))
            return report(state: .aborted, exit: 130, before: before, after: nil, abortReason: "interrupted")
        }
        guard before else {
            log.log(.note(.error, .deviated, "the steady state does not hold before the method: nothing injected"))
            return report(state: .deviated, exit: 1, before: false, after: nil, abortReason: "steady state did not hold before the method")
        }

        // 2. The method, journalled and guarded.
        let methodStart = clock.now
        let offset: @Sendable () -> Double = {
            (ContinuousClock.now - methodStart).seconds
        }
        let deadline = Date().addingTimeInterval(scenario.spec.maxDuration.seconds + settings.grace.seconds)
        let me = context.processes.read(getpid())?.identity ?? ProcessIdentity(pid: getpid(), startTime: 0, name: "faultline")
        do {
            try journal.begin(RunEntry(id: settings.runID, scenario: scenario.metadata.name.rawValue, state: .running,
                                       startedAt: startedAt, runner: me, deadline: deadline))
        } catch {
            log.log(.note(.error, .journal, "cannot journal the run, so nothing is injected: \(error)"))
            return report(state: .failed, exit: 3, before: true, after: nil, abortReason: "journal unavailable: \(error)")
        }
        // Every target namespace is held by a pin for the whole run (journalled first), and is still the one planned.
        let pins = Array(Set(plan.faults.compactMap(\.namespace))).sorted { $0.path < $1.path }
        for pin in pins {
            do {
                try journal.recordPin(pin, runID: settings.runID)
                try NamespacePin.create(pin)
                log.log(.note(.debug, .pin, "pinned \(pin)"))
            } catch {
                log.log(.note(.error, .pin, "cannot hold the target namespace \(pin.source) for the run, so nothing is injected: \(error)"))
                let left = Recovery(journal: journal, context: context).releasePins(runID: settings.runID)
                for failure in left { log.log(.note(.error, .pin, "\(failure)")) }
                do { try journal.setState(.failed, of: settings.runID, reason: "cannot pin the target namespace: \(error)") } catch let journalError {
                    log.log(.note(.error, .journal, "cannot record the run's end: \(journalError)"))
                }
                return report(state: .failed, exit: 3, before: true, after: nil, abortReason: "cannot pin the target namespace: \(error)")
            }
        }
        let guardProcess = startGuard()
        let source = RunMonitor.Source(plan: plan, progress: progress, ledger: ledger, methodStart: methodStart)
        live?.attach(source)
        monitor?.attach(source)
        log.log(.methodStarted(faults: plan.faults.count, maxDuration: scenario.spec.maxDuration))

        await withTaskGroup(of: Void.self) { group in
            let remaining = Countdown(plan.faults.count)
            let order = InjectionOrder(scenario.spec.faults)
            for (index, (fault, planned)) in zip(scenario.spec.faults, plan.faults).enumerated() {
                group.addTask {
                    await runFault(fault, planned, start: methodStart, turn: order.turns[index], order: order, progress: progress, offset: offset, span: span)
                    if remaining.tick() { stop.fire(.methodComplete) }
                }
            }
            let aborts = AbortLog()
            for probe in scenario.spec.steadyState?.probes ?? [] {
                group.addTask { await probeLoop(probe, ledger: ledger, offset: offset, aborts: aborts, span: span, progress: progress) }
            }
            // An abort from outside the probes (the controller, an expired lease) is an event too (webhooks, Grafana).
            group.addTask {
                await stop.wait()
                if case .abort(let cause, let why, _) = stop.reason, aborts.claim() {
                    log.log(.aborted(cause: cause, reason: why, probe: nil))
                    logRunbook()
                    span.event("abort", ["faultline.abort.reason": why])
                }
            }
            group.addTask {
                if await !stop.sleep(until: methodStart + .microseconds(scenario.spec.maxDuration.microseconds)) {
                    stop.fire(.deadline)
                }
            }
            if let live {
                group.addTask {
                    while await !stop.sleep(until: .now + .milliseconds(250)) { live.redraw() }
                }
            }
        }

        live?.detach()

        // 3. Whatever is still journalled as active is reverted now.
        let recovery = Recovery(journal: journal, context: context)
        let leftovers = await recovery.revert(runID: settings.runID)
        for outcome in leftovers {
            log.log(outcome.error.map { .revertFailed(fault: outcome.name, error: $0.description, seconds: outcome.duration) }
                    ?? .reverted(fault: outcome.name, seconds: outcome.duration))
            if let journalError = outcome.journalError {
                log.log(.note(.error, .journal, "the journal could not record this: \(journalError)", fault: outcome.name))
            }
            progress.update(outcome.name) { entry in
                entry.state = outcome.error == nil ? .reverted : .revertFailed
                entry.error = outcome.error?.description ?? entry.error
                if entry.revertedAt == nil { entry.revertedAt = offset() }
            }
        }
        // The pins go once nothing of the run can be left in their namespaces; a failed revert keeps them, so a
        // later recover (or a person, with the printed commands) still enters the right namespace.
        if !pins.isEmpty, !plan.faults.contains(where: { progress[$0.name].state == .revertFailed }), !leftovers.contains(where: { $0.error != nil }) {
            for failure in recovery.releasePins(runID: settings.runID) {
                log.log(.note(.error, .pin, "\(failure); remove it by hand: umount -l PATH && rm PATH"))
            }
        }

        // 4. Steady state after, unless interrupted (before or while the recovery is watched).
        var after: Bool?
        var recoveredAfter: Double?
        let window = scenario.spec.steadyState?.recoveryWindow
        if !stop.isInterrupted {
            if let window {
                (after, recoveredAfter) = await watchRecovery(ledger, window: window, offset: offset, span: span,
                                                              since: plan.faults.compactMap { progress[$0.name].revertedAt }.max() ?? offset())
            } else {
                log.log(.note(.info, .after, "checking the steady state after the method"))
                after = await checkAll(ledger, phase: .after, at: offset(), span: span)
            }
        }

        // A stop signal after the method ended (during the recovery window) makes the run interrupted, unless it had
        // aborted already: then it stays aborted, and the signal only cut the watch short.
        let aborted = if case .abort = stop.reason { true } else { false }
        let reason = stop.isInterrupted && !aborted ? .interrupted : stop.reason
        let revertFailed = plan.faults.contains { progress[$0.name].state == .revertFailed } || leftovers.contains { $0.error != nil }
        let slo = ledger.verdict()
        let (state, exit, abortReason): (RunState, Int32, String?) = {
            if revertFailed { return (.failed, 4, abortReasonText(reason)) }
            if reason == .interrupted { return (.aborted, 130, "interrupted") }
            if case .abort(_, let why, _) = reason { return (.aborted, 1, why) }
            if after == false, let window {
                return (.deviated, 1, "the steady state did not come back within the recovery window of \(window) after the last revert")
            }
            if after == false { return (.deviated, 1, nil) }
            if let slo, !slo.met { return (.deviated, 1, nil) }
            // A held steady state proves nothing about a fault that did not fully act...
            if let degraded = plan.faults.first(where: { progress[$0.name].degraded != nil }) {
                return (.inconclusive, 5, "fault '\(degraded.name)' did not fully act: \(progress[degraded.name].degraded ?? "")")
            }
            // ...nor about one that went in only after the method had ended...
            if let late = plan.faults.first(where: { progress[$0.name].afterMethod }) {
                return (.inconclusive, 5, "fault '\(late.name)' went in only after the method had ended (its inject took until +\(String(format: "%.1f", progress[late.name].injectedAt ?? 0)) s): nothing watched the steady state while it was in place")
            }
            // ...nor about one that acted on nothing (no packet matched its rules, no process was stopped), or whose
            // effect could not be read...
            let injected = plan.faults.filter { progress[$0.name].injectedAt != nil }
            if let idle = injected.first(where: { progress[$0.name].evidence?.hits == 0 }), let evidence = progress[idle.name].evidence {
                return (.inconclusive, 5, "fault '\(idle.name)' acted on nothing while it was in place (\(evidence.detail)): the steady state held because nothing happened")
            }
            if let unread = injected.first(where: { progress[$0.name].evidence == nil }) {
                let why = progress[unread.name].evidenceError ?? "nothing was read before its revert"
                return (.inconclusive, 5, "what fault '\(unread.name)' did cannot be read (\(why)): nothing shows it acted")
            }
            // ...nor when a probe that should have watched the method has no result from it.
            let watched = Set(ledger.samples.filter { $0.phase == .method }.map(\.probe))
            if let silent = (scenario.spec.steadyState?.probes ?? []).first(where: { $0.during == nil && !watched.contains($0.name.rawValue) }) {
                return (.inconclusive, 5, "probe '\(silent.name)' has no result during the method: nothing shows the steady state held while the faults were in place")
            }
            return (.succeeded, 0, nil)
        }()
        do { try journal.setState(state, of: settings.runID, reason: abortReason) } catch {
            // The guard then still sees a live run and reverts again when this process ends: harmless, but said.
            log.log(.note(.error, .journal, "cannot record the run's end in the journal: \(error)"))
        }
        if let guardProcess { await reapGuard(guardProcess) }
        let abortedAt: Double? = if case .abort = reason, let fired = stop.firedAt {
            (fired - methodStart).seconds
        } else { nil }
        let (abortCause, abortProbe): (AbortCause?, String?) = if case .abort(let cause, _, let probe) = reason { (cause, probe) } else { (nil, nil) }
        log.log(.ended(run: settings.runID, state: state, exitCode: exit, reason: abortReason))
        return report(state: state, exit: exit, before: true, after: after, abortReason: abortReason, abortCause: abortCause, abortProbe: abortProbe,
                      abortedAt: abortedAt, recoveredAfter: recoveredAfter)
    }

    /// After the last revert, checks the probes again and again (at their shortest interval, 100 ms to 5 s) until they
    /// all pass or `window` is over: whether they came back, and how long after the last revert (`since`) they did;
    /// nil when a stop signal (Ctrl-C) ended the watch first: every fault is reverted by then, only the watch stops.
    func watchRecovery(_ ledger: ProbeLedger, window: TimeSpan, offset: @escaping @Sendable () -> Double, span: RunSpan,
                       since: Double) async -> (Bool?, Double?) {
        log.log(.note(.info, .after, "watching the recovery: the probes have up to \(window) to pass again"))
        let clock = ContinuousClock()
        let deadline = clock.now + .microseconds(window.microseconds)
        let shortest = (scenario.spec.steadyState?.probes ?? []).filter { $0.during == nil }.map(\.interval.microseconds).min() ?? 1_000_000
        let step = Duration.microseconds(min(max(shortest, 100_000), 5_000_000))
        while true {
            let next = clock.now + step
            let at = offset()
            if await checkAll(ledger, phase: .after, at: at, span: span) {
                let took = max(0, at - since)
                log.log(.note(.info, .after, "recovered: the probes pass again \(String(format: "%.1f", took)) s after the last revert"))
                return (true, took)
            }
            if next >= deadline {
                log.log(.note(.error, .after, "not recovered: the probes still fail \(window) after the method (the recovery window)"))
                return (false, nil)
            }
            while clock.now < next, !stop.isInterrupted {
                try? await clock.sleep(until: min(next, clock.now + .milliseconds(50)))
            }
            if stop.isInterrupted {
                log.log(.note(.warning, .after, "the recovery watch stopped (interrupted): every fault was already reverted"))
                return (nil, nil)
            }
        }
    }

    /// On an abort, the scenario's runbook, right after the abort line: what the operator reads next.
    func logRunbook() {
        guard let runbook = scenario.metadata.runbook else { return }
        log.log(.note(.error, .abort, "runbook: \(runbook)"))
    }

    func abortReasonText(_ reason: StopReason?) -> String? {
        switch reason {
        case .abort(_, let why, _): why
        case .interrupted: "interrupted"
        default: nil
        }
    }

    static func text(_ action: PlanAction) -> String {
        switch action {
        case .command(let argv): ShellQuote.join(argv)
        case .batch(let argv, let input): ShellQuote.join(argv) + " <<'EOF'\n" + input + "EOF"
        case .start(let argv, _): ShellQuote.join(argv) + " &"
        case .call(let call): call.description
        }
    }
}
