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
        /// The driver that applies a fault (tests give fakes).
        public var drivers: @Sendable (Fault, PlannedFault, String, DriverContext) -> any FaultDriver = { fault, planned, runID, context in
            Drivers.driver(for: fault, planned: planned, runID: runID, context: context)
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

    /// What became of each fault, filled in as the method runs.
    final class FaultProgress: Sendable {
        struct Entry {
            var injectedAt: Double?
            var revertedAt: Double?
            var state = FaultRunState.notInjected
            var error: String?
            /// Set as its revert begins: from then on it may no longer hold.
            var reverting = false
            /// Why it did not fully act, when it did not (its delayer or hog ended early, less was filled than asked).
            var degraded: String?

            /// In place, and not on its way out.
            var inPlace: Bool { state == .active && !reverting }
        }

        private let entries = Mutex<[String: Entry]>([:])

        func update(_ fault: String, _ change: (inout Entry) -> Void) {
            entries.withLock { change(&$0[fault, default: Entry()]) }
        }

        subscript(fault: String) -> Entry { entries.withLock { $0[fault] ?? Entry() } }
    }

    /// Whether the run's abort has been logged: once, by the probe whose results fired it or else when it fires.
    final class AbortLog: Sendable {
        private let logged = Mutex(false)

        /// True the first time only.
        func claim() -> Bool { logged.withLock { was in defer { was = true }; return !was } }
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
                    abortProbe: String? = nil, abortedAt: Double? = nil) -> RunReport {
            RunReport(
                scenario: scenario.metadata.name.rawValue, description: scenario.metadata.description, runID: settings.runID,
                host: ProcessInfo.processInfo.hostName, user: ProcessInfo.processInfo.userName, startedAt: startedAt, endedAt: Date(),
                state: state, exitCode: exit, abortReason: abortReason, abortCause: abortCause, abortProbe: abortProbe, abortedAt: abortedAt, runbook: scenario.metadata.runbook,
                steadyStateBefore: before, steadyStateAfter: after, slo: ledger.verdict(),
                faults: plan.faults.map { planned in
                    let entry = progress[planned.name]
                    return RunReport.FaultRecord(name: planned.name, type: planned.type, target: planned.target, summary: planned.summary,
                                                 injectedAt: entry.injectedAt, revertedAt: entry.revertedAt,
                                                 injectCommands: planned.inject.map(Self.text), revertCommands: planned.revert.map(Self.text),
                                                 state: entry.state, error: entry.error ?? entry.degraded)
                },
                probes: ledger.samples, review: RunReport.reviewTemplate)
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

        // 4. Steady state after, unless interrupted.
        let reason = stop.reason
        var after: Bool?
        if reason != .interrupted {
            log.log(.note(.info, .after, "checking the steady state after the method"))
            after = await checkAll(ledger, phase: .after, at: offset(), span: span)
        }

        let revertFailed = plan.faults.contains { progress[$0.name].state == .revertFailed } || leftovers.contains { $0.error != nil }
        let slo = ledger.verdict()
        let (state, exit, abortReason): (RunState, Int32, String?) = {
            if revertFailed { return (.failed, 4, abortReasonText(reason)) }
            if reason == .interrupted { return (.aborted, 130, "interrupted") }
            if case .abort(_, let why, _) = reason { return (.aborted, 1, why) }
            if after == false { return (.deviated, 1, nil) }
            if let slo, !slo.met { return (.deviated, 1, nil) }
            // A held steady state proves nothing about a fault that did not fully act...
            if let degraded = plan.faults.first(where: { progress[$0.name].degraded != nil }) {
                return (.inconclusive, 5, "fault '\(degraded.name)' did not fully act: \(progress[degraded.name].degraded ?? "")")
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
                      abortedAt: abortedAt)
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
        case .start(let argv): ShellQuote.join(argv) + " &"
        case .call(let text): text
        }
    }

    /// One probe request in its own span (a child of the run's), which an http probe's `traceparent` header carries
    /// into the service; returns the outcome and the trace ID.
    func check(_ probe: Probe, phase: RunReport.ProbeSample.Phase, span run: RunSpan) async -> (ProbeOutcome, traceID: String?) {
        let span = run.child("probe \(probe.name)", kind: .client)
        var request = probe
        span.set("faultline.probe.name", probe.name.rawValue)
        span.set("faultline.probe.kind", probe.check.kind)
        span.set("faultline.probe.phase", phase.rawValue)
        if case .http(var http) = probe.check {
            span.set("http.request.method", http.method)
            span.set("url.full", http.url)
            if let traceparent = span.traceparent {
                http.headers = (http.headers ?? [:]).filter { $0.key.lowercased() != "traceparent" }.merging(["traceparent": traceparent]) { $1 }
                request.check = .http(http)
            }
        }
        let outcome = await probes.check(request)
        if let status = outcome.status { span.set("http.response.status_code", status) }
        span.set("faultline.probe.ok", outcome.ok)
        span.set("faultline.probe.detail", outcome.detail)
        span.set("faultline.probe.latency_ms", outcome.latency * 1000)
        if !outcome.ok { span.fail(outcome.detail) }
        span.end()
        return (outcome, span.traceID)
    }

    /// Every probe once, in parallel (but those checked only `during` a fault); true when all passed.
    func checkAll(_ ledger: ProbeLedger, phase: RunReport.ProbeSample.Phase, at: Double, span: RunSpan) async -> Bool {
        let probes = (scenario.spec.steadyState?.probes ?? []).filter { $0.during == nil }
        return await withTaskGroup(of: Bool.self) { group in
            for probe in probes {
                group.addTask {
                    let (outcome, traceID) = await check(probe, phase: phase, span: span)
                    _ = ledger.record(probe, outcome, phase: phase, at: at, traceID: traceID)
                    log.log(.probed(probe: probe.name.rawValue, phase: phase, ok: outcome.ok, latency: outcome.latency))
                    if !outcome.ok { log.log(.probeFailed(probe: probe.name.rawValue, phase: phase, detail: outcome.detail)) }
                    return outcome.ok
                }
            }
            var all = true
            for await ok in group { all = all && ok }
            return all
        }
    }

    /// Checks a probe every interval until the method ends, or at its load rate (open loop: requests go out on
    /// their schedule whether or not earlier ones have answered, so a slow service does not slow the load).
    /// A probe `during` a fault starts once it is in place and stops as its revert begins; a result that comes back
    /// after that is no result (the fault may no longer hold).
    func probeLoop(_ probe: Probe, ledger: ProbeLedger, offset: @escaping @Sendable () -> Double, aborts: AbortLog, span: RunSpan,
                   progress: FaultProgress) async {
        let clock = ContinuousClock()
        let inPlace: @Sendable () -> Bool = { probe.during.map { progress[$0.rawValue].inPlace } ?? true }
        if let fault = probe.during {
            while !inPlace() {
                if progress[fault.rawValue].reverting || progress[fault.rawValue].state.isSettled { return }
                if await stop.sleep(until: clock.now + .milliseconds(10)) { return }
            }
        }
        let begin = clock.now
        // Load shapes are timed from the method's start.
        let methodSeconds = offset()
        var next = begin
        var wasOK = true
        let check: @Sendable () async -> Bool? = {
            let at = offset()
            let (outcome, traceID) = await self.check(probe, phase: .method, span: span)
            // A request cut off because the method ended, or back after its fault began to go, is no result.
            if Task.isCancelled || !inPlace() { return nil }
            log.log(.probed(probe: probe.name.rawValue, phase: .method, ok: outcome.ok, latency: outcome.latency))
            if let abort = ledger.record(probe, outcome, phase: .method, at: at, traceID: traceID) {
                if aborts.claim() {
                    log.log(.aborted(cause: .condition, reason: abort, probe: probe.name.rawValue))
                    span.event("abort", ["faultline.abort.reason": abort])
                }
                stop.fire(.abort(.condition, abort, probe: probe.name.rawValue))
            }
            return outcome.ok
        }
        await withDiscardingTaskGroup { inFlight in
            while stop.reason == nil, inPlace() {
                let rate = probe.loadRate(at: methodSeconds + (next - begin).seconds)
                if rate != nil {
                    inFlight.addTask { _ = await check() }  // open loop: do not wait for the answer
                } else if let ok = await check(), ok != wasOK {
                    log.log(.probeChanged(probe: probe.name.rawValue, ok: ok))
                    wasOK = ok
                }
                next = next + (rate.map { .nanoseconds(Int64(1e9 / max($0, 0.001))) } ?? .microseconds(probe.interval.microseconds))
                if await stop.sleep(until: next) { break }
            }
            // The method is over: requests still waiting for an answer are not part of it.
            inFlight.cancelAll()
        }
    }

    /// Applies one fault at its start (after the faults before it in `order` have tried), repeats it (`every`), and
    /// reverts it at its end or when the method stops. Once the run is stopping, it is not injected at all.
    func runFault(_ fault: Fault, _ planned: PlannedFault, start: ContinuousClock.Instant, turn: Int, order: InjectionOrder,
                  progress: FaultProgress, offset: @escaping @Sendable () -> Double, span run: RunSpan) async {
        let name = fault.name.rawValue
        let stopped = await stop.sleep(until: start + .microseconds(fault.start.microseconds))
        await order.wait(turn)
        var tried = false
        defer { if !tried { order.finish(turn) } }
        if stopped || stop.reason != nil { return }
        // The fault's span runs from the inject to the end of its revert.
        let span = run.child("fault \(name)")
        span.set("faultline.fault.name", name)
        span.set("faultline.fault.type", fault.type.rawValue)
        span.set("faultline.fault.target", planned.target)
        span.set("faultline.fault.summary", planned.summary)
        defer {
            let entry = progress[name]
            span.set("faultline.fault.state", entry.state.rawValue)
            if let error = entry.error { span.fail(error) }
            span.end()
        }
        let driver = settings.drivers(fault, planned, settings.runID, context)
        let writer = JournalWriter(journal: journal, runID: settings.runID, fault: name, type: fault.type)
        var record: RevertRecord
        do {
            record = try await driver.apply(journal: writer)
            try journal.record(runID: settings.runID, fault: name, type: fault.type, state: .active, record: record)
            progress.update(name) { $0.injectedAt = offset(); $0.state = .active }
            log.log(.injected(fault: name, summary: planned.summary, again: false))
            span.event("inject")
            tried = true
            order.finish(turn)
        } catch {
            progress.update(name) { $0.error = error.description; $0.state = .failed }
            log.log(.injectFailed(fault: name, error: error.description, again: false))
            if let last = writer.lastRecord {
                do {
                    try await driver.revert(last)
                    try? journal.setState(.failed, runID: settings.runID, fault: name, error: error.description)
                } catch let revertError {
                    try? journal.setState(.revertFailed, runID: settings.runID, fault: name, error: revertError.description)
                    progress.update(name) { $0.state = .revertFailed; $0.error = "\(error); revert: \(revertError)" }
                }
            }
            stop.fire(.abort(.injectFailed, "fault '\(name)' could not be injected: \(error)"))
            return  // the deferred finish lets the next fault see the abort
        }
        // A userspace engine's warnings while the fault is in place; cancelled (after a last read) once it is reverted.
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await driver.watch { report in
                    // Once its revert began, a stress process or delayer that ends is the revert's doing.
                    if report.level == .failure, progress[name].reverting { return }
                    if report.level == .failure {
                        progress.update(name) { $0.degraded = $0.degraded.map { "\($0); \(report.message)" } ?? report.message }
                        log.log(.degraded(fault: name, why: report.message))
                    } else {
                        log.log(.engine(fault: name, level: report.level == .warning ? .warning : .info, message: report.message))
                    }
                }
            }
            let end = start + .microseconds(planned.end.microseconds)
            if let every = planned.every {
                var next = start + .microseconds(fault.start.microseconds + every.microseconds)
                while next < end, await !stop.sleep(until: next) {
                    do {
                        record = try await driver.apply(journal: writer)
                        log.log(.injected(fault: name, summary: planned.summary, again: true))
                        span.event("inject")
                    } catch {
                        log.log(.injectFailed(fault: name, error: "\(error)", again: true))
                    }
                    next = next + .microseconds(every.microseconds)
                }
            }
            _ = await stop.sleep(until: end)
            progress.update(name) { $0.reverting = true }
            let began = ContinuousClock.now
            do throws(FaultlineError) {
                try await driver.revert(record)
                progress.update(name) { $0.revertedAt = offset(); $0.state = $0.degraded == nil ? .reverted : .degraded }
                log.log(.reverted(fault: name, seconds: (ContinuousClock.now - began).seconds))
                span.event("revert")
                // The fault is gone; only the record of it may fail (a full state filesystem): said as that.
                do { try journal.setState(.reverted, runID: settings.runID, fault: name) } catch {
                    log.log(.note(.error, .journal, "reverted, but the journal could not record it (the guard or recover will find it gone): \(error)", fault: name))
                }
            } catch {
                try? journal.setState(.revertFailed, runID: settings.runID, fault: name, error: error.description)
                progress.update(name) { $0.state = .revertFailed; $0.error = error.description; $0.revertedAt = nil }
                log.log(.revertFailed(fault: name, error: error.description, seconds: (ContinuousClock.now - began).seconds))
            }
            group.cancelAll()
        }
    }

    /// Starts the guard in its own session, so a Ctrl-C to the runner's terminal does not reach it, with its output
    /// in a file of its own: a closed or stalled pipe the runner writes to cannot stop the guard's revert.
    func startGuard() -> ProcessIdentity? {
        guard let argv = settings.guardCommand else { return nil }
        var output = "/dev/null"
        if let guardLog = settings.guardLog {
            do {
                try FileManager.default.createDirectory(atPath: (guardLog as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                output = guardLog
            } catch {
                log.log(.note(.warning, .guard, "cannot make the folder of the guard's log '\(guardLog)': \(error); the guard logs nowhere"))
            }
        }
        do {
            let child = try context.launcher.start(argv, output: .file(output), newSession: true).identity
            log.log(.note(.debug, .guard, "guard started as pid \(child.pid), logging to \(output)"))
            return child
        } catch {
            log.log(.note(.warning, .guard, "could not start the guard: \(error); faults are still reverted by this process"))
            return nil
        }
    }

    /// The guard leaves once it sees the run ended; collect it (a second at most).
    func reapGuard(_ child: ProcessIdentity) async {
        await context.launcher.reap(child.pid, within: .seconds(1))
    }
}

/// Counts down to zero from several tasks.
final class Countdown: Sendable {
    private let count: Mutex<Int>
    init(_ count: Int) { self.count = Mutex(count) }
    /// One less; true for the call that reaches zero.
    func tick() -> Bool {
        count.withLock { count in
            count -= 1
            return count == 0
        }
    }
}
