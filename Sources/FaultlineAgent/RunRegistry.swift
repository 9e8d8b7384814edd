import FaultlineCore
import FaultlineEngine
import FaultlineFaults
import FaultlineJournal
import FaultlineProbes
import FaultlineSystem
import Foundation
import ServiceLifecycle
import Synchronization

/// Every run and schedule of the agent. Runs go through the same engine, journal and guard as `faultline run`.
/// As a service it runs them, watches leases and fires schedules; on graceful shutdown it reverts every run first.
public final class RunRegistry: Service, Sendable {
    let configuration: AgentConfiguration
    public let metrics = AgentMetrics()
    let journal: Journal
    let context = DriverContext()
    let write: @Sendable (String) -> Void
    /// Where every mutating request is recorded.
    let auditLog: AuditLog

    private let runs = Mutex<[String: AgentRun]>([:])
    let schedules = Mutex<[String: ScheduleEntry]>([:])
    private let port = Mutex<UInt16?>(nil)
    private let jobs: AsyncStream<@Sendable () async -> Void>
    private let enqueue: AsyncStream<@Sendable () async -> Void>.Continuation
    /// Fires when the agent shuts down.
    let shutdown = StopSignal()

    /// `write` takes the agent's log lines (stderr in production).
    public init(configuration: AgentConfiguration, write: @escaping @Sendable (String) -> Void) throws(FaultlineError) {
        self.configuration = configuration
        self.write = write
        let journal = try Journal(directory: configuration.stateDirectory)
        self.journal = journal
        let format = configuration.logFormat, minimum = configuration.logLevel
        auditLog = AuditLog(journal: journal) { message in
            EventLog(format: format, run: "-", scenario: "-", minimum: minimum, write: write).log(.note(.warning, .audit, message))
        }
        (jobs, enqueue) = AsyncStream.makeStream()
        if configuration.port != 0 { port.withLock { $0 = UInt16(configuration.port) } }
    }

    var runsDirectory: String { configuration.stateDirectory + "/runs" }

    /// The port the API really listens on (after binding port 0), exempted from network faults.
    public func serverStarted(port: Int) { self.port.withLock { $0 = UInt16(clamping: port) } }

    /// The API's port, once known.
    var boundPort: UInt16? { port.withLock { $0 } }

    func log(_ level: RunEvent.Level, _ event: RunEvent.Name, _ message: String, run: String = "-") {
        EventLog(format: configuration.logFormat, run: run, scenario: "-", minimum: configuration.logLevel, write: write)
            .log(.note(level, event, message))
    }

    // MARK: Start

    /// Before the API opens: reverts what a crashed agent left, loads earlier runs, and reports missed schedules.
    public func prepare() async {
        if let problem = journal.reserveProblem { log(.warning, .journal, problem) }
        await recoverLeftovers()
        loadRuns()
        loadSchedules(now: Date())
    }

    /// Reverts what runs whose runner died left (a crashed agent's, a killed 'faultline run''s whose guard may still
    /// be at it), as `faultline run` does before it starts; what stays (a failed revert) is logged.
    func recoverLeftovers() async {
        do {
            for (run, outcomes) in try await Recovery(journal: journal, context: context).recoverAll() {
                let failed = outcomes.filter { $0.error != nil }.count
                log(failed == 0 ? .warning : .error, .recover,
                    "run \(run.id) of \(run.scenario) was left by a runner that died; reverted \(outcomes.count - failed) of \(outcomes.count) fault(s)",
                    run: run.id)
            }
        } catch {
            log(.error, .recover, "cannot recover from the journal: \(error)")
        }
    }

    func loadRuns() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDirectory)) ?? []
        var loaded: [String: AgentRun] = [:]
        for name in names where RunID.isValid(name) {
            guard let run = AgentRun.load(from: runsDirectory + "/" + name) else { continue }
            if [.running, .reverting].contains(run.status.state) {
                // The agent died while it ran: its guard (or the recovery above) reverted from the journal.
                let entry = try? journal.run(run.id)
                let journalled = (try? journal.faults(of: run.id)) ?? []
                let left = journalled.contains { $0.state.mayBeActive }
                let why = entry?.reason ?? "the runner died"
                run.finish { status in
                    status.state = .failed
                    status.endedAt = entry?.endedAt ?? Date()
                    status.exitCode = left ? 4 : 1
                    status.reason = "the agent stopped during the run: \(why)"
                    for fault in journalled {
                        guard let index = status.faults.firstIndex(where: { $0.name == fault.name }) else { continue }
                        status.faults[index].state = fault.state
                        status.faults[index].error = fault.error
                    }
                }
                metrics.ended(.failed)
            }
            loaded[run.id] = run
        }
        runs.withLock { $0.merge(loaded) { current, _ in current } }
    }

    // MARK: Runs

    /// `{"runs": [...]}`, oldest first, from each run's cached JSON.
    func listJSON() -> Data {
        let all = runs.withLock { Array($0.values) }.map { ($0.status, $0) }
            .sorted { ($0.0.createdAt, $0.0.id) < ($1.0.createdAt, $1.0.id) }
        var data = Data("{\"runs\":[".utf8)
        for (index, entry) in all.enumerated() {
            if index > 0 { data.append(0x2C) }
            data.append(entry.1.statusJSON)
        }
        data.append(contentsOf: Array("]}".utf8))
        return data
    }

    func run(_ id: String) throws(AgentError) -> AgentRun {
        guard let run = runs.withLock({ $0[id] }) else { throw AgentError.notFound("no run '\(id)' on this agent") }
        return run
    }

    public func status(_ id: String) throws(AgentError) -> RunStatus { try run(id).status }

    /// The audit log's entries after `seq`, oldest first; without `seq`, the newest `limit`.
    func audit(after seq: Int64?, limit: Int) throws(AgentError) -> [AuditEntry] {
        do { return try journal.auditEntries(after: seq, limit: limit) } catch {
            throw AgentError(.internalServerError, "journal", "cannot read the audit log: \(error)")
        }
    }

    /// Makes a run known (a cron run that could not start still shows, with its reason).
    func registerIfNeeded(_ run: AgentRun) {
        runs.withLock { runs in if runs[run.id] == nil { runs[run.id] = run } }
    }

    /// The report of a finished run, in `format` (rendered from its report.json).
    public func report(_ id: String, format: RunReport.Format = .json) throws(AgentError) -> Data {
        let run = try run(id)
        guard run.status.state.isFinal else {
            throw AgentError(.conflict, "not_finished", "run '\(id)' is \(run.status.state.rawValue); its report is written when it ends")
        }
        guard let data = FileManager.default.contents(atPath: run.directory + "/report.json") else {
            throw AgentError(.notFound, "no_report", "run '\(id)' ended without a report (\(run.status.reason ?? run.status.state.rawValue))")
        }
        guard format != .json else { return data }
        do { return try RunReport.decode(data).rendered(format) } catch {
            throw AgentError(.internalServerError, "no_report", "run '\(id)': its report.json cannot be read: \(error)")
        }
    }

    /// What a submission asks for besides the scenario.
    public struct SubmitOptions: Sendable {
        public var at: Date?
        public var lease: TimeSpan?
        /// The file name the controller read the scenario from, for error positions.
        public var source: String

        public init(at: Date? = nil, lease: TimeSpan? = nil, source: String = "scenario.yaml") {
            self.at = at
            self.lease = lease
            self.source = source
        }
    }

    func load(_ text: String, source: String) throws(AgentError) -> Scenario {
        let scenario: Scenario
        do { scenario = try ScenarioLoader.load(yaml: text, file: source) } catch { throw AgentError.invalid(error) }
        if !configuration.allowCommandProbes {
            let commands = (scenario.spec.steadyState?.probes ?? []).enumerated().compactMap { index, probe -> AgentError.Detail? in
                guard case .command(let check) = probe.check else { return nil }
                return AgentError.Detail(path: "spec.steadyState.probes[\(index)].command", line: nil, column: nil,
                                         message: "probe '\(probe.name)' would run \(check.argv.first ?? "a program") on this agent's host")
            }
            if !commands.isEmpty {
                throw AgentError(.badRequest, "invalid_scenario",
                                 "command probes run any program as this agent's user: start the agent with --allow-command-probes to accept them; nothing was applied",
                                 details: commands)
            }
        }
        if !configuration.allowProbeCredentials {
            let named = (scenario.spec.steadyState?.probes ?? []).enumerated().compactMap { index, probe -> AgentError.Detail? in
                guard case .prometheus(let check) = probe.check, let auth = check.auth else { return nil }
                let key = if case .bearer = auth { "bearerToken" } else { "basicAuth" }
                return AgentError.Detail(path: "spec.steadyState.probes[\(index)].prometheus.\(key)", line: nil, column: nil,
                                         message: "probe '\(probe.name)' reads a credential from this agent's host")
            }
            if !named.isEmpty {
                throw AgentError(.badRequest, "invalid_scenario",
                                 "credentials named in a scenario are read from the agent's own files and environment: start the agent with --allow-probe-credentials to accept them; nothing was applied",
                                 details: named)
            }
        }
        return scenario
    }

    /// Starts a run now, or schedules it (`at`). Nothing is applied when anything is wrong with it.
    public func submit(_ text: String, options: SubmitOptions) async throws(AgentError) -> SubmitResponse {
        let scenario = try load(text, source: options.source)
        if let lease = options.lease, lease.microseconds < 1_000_000 {
            throw AgentError.badRequest("lease '\(lease)' is too short: at least 1s")
        }
        let id = RunID.random()
        if let at = options.at {
            guard at > Date() else { throw AgentError.badRequest("'at' \(ISO8601DateFormatter().string(from: at)) is in the past") }
            guard at < Date().addingTimeInterval(366 * 86_400) else {
                throw AgentError.badRequest("'at' \(ISO8601DateFormatter().string(from: at)) is more than a year away: schedule it closer, or use a cron schedule")
            }
            let schedule = ScheduleEntry(id: id, kind: .at, scenario: scenario.metadata.name.rawValue, source: text, cron: nil,
                                         timeZone: "UTC", at: at, nextAt: at, lease: options.lease?.seconds, createdAt: Date())
            do { try journal.save(schedule) } catch { throw AgentError(.internalServerError, "journal", error.description) }
            schedules.withLock { $0[id] = schedule }
            let run = AgentRun(status: initialStatus(id: id, scenario: scenario, state: .scheduled, scheduledAt: at, schedule: id, lease: options.lease),
                               directory: runsDirectory + "/" + id)
            run.persist(run.status)
            runs.withLock { $0[id] = run }
            log(.info, .scheduled, "run \(id) of \(scenario.metadata.name) scheduled at \(ISO8601DateFormatter().string(from: at))", run: id)
            return SubmitResponse(id: id, state: .scheduled, scheduledAt: at, schedule: id)
        }
        let (session, prepared) = try await admit(scenario, runID: id)
        let run = AgentRun(status: initialStatus(id: id, scenario: scenario, state: .running, scheduledAt: nil, schedule: nil, lease: options.lease),
                           directory: session.directory)
        // A new run cannot have ended yet: it always starts.
        if try hold(run, session, prepared) { start(run, session, prepared) }
        return SubmitResponse(id: id, state: .running, scheduledAt: nil, schedule: nil)
    }

    func initialStatus(id: String, scenario: Scenario, state: RunStatus.State, scheduledAt: Date?, schedule: String?, lease: TimeSpan?) -> RunStatus {
        RunStatus(id: id, scenario: scenario.metadata.name.rawValue, state: state, createdAt: Date(), scheduledAt: scheduledAt,
                  startedAt: nil, endedAt: nil, exitCode: nil, reason: nil,
                  leaseExpiresAt: state == .running ? lease.map { Date().addingTimeInterval($0.seconds) } : nil,
                  leaseSeconds: lease?.seconds, schedule: schedule,
                  faults: scenario.spec.faults.map { fault in
                      RunStatus.FaultStatus(name: fault.name.rawValue, type: fault.type.rawValue,
                                            target: (fault.target ?? scenario.spec.target)?.description ?? "this host",
                                            state: .pending, injectedAt: nil, revertedAt: nil, error: nil)
                  })
    }

    /// The run's session on this agent: the same as `faultline run`'s, with the agent's state directory, executable,
    /// guard options, API port (exempted from network faults), traces and notifications; its events feed the run's
    /// status, stream and metrics.
    func session(_ scenario: Scenario, runID: String, observe run: AgentRun? = nil) -> RunSession {
        var settings = RunSession.Settings(stateDirectory: configuration.stateDirectory)
        settings.executable = configuration.executable
        settings.guardArguments = configuration.forwarded
        settings.agentPort = boundPort
        settings.tracer = configuration.tracer
        settings.notify = configuration.notify
        settings.grafana = configuration.grafana
        configuration.sessionSettings?(&settings)
        let metrics = metrics
        var observe: (@Sendable (RunEvent, Date) -> Void)?
        if let run {
            observe = { event, date in
                let previous = run.record(event, at: date)
                metrics.observe(event, type: event.fault.flatMap(run.faultType), previous: previous)
            }
        }
        let log = EventLog(format: configuration.logFormat, run: runID, scenario: scenario.metadata.name.rawValue,
                           minimum: configuration.logLevel, observe: observe, write: write)
        return RunSession(scenario: scenario, runID: runID, settings: settings, journal: journal, context: context, log: log)
    }

    /// Plans the scenario here and runs the preflight: 409 naming a leftover in the way, 422 with the failed checks
    /// when it cannot run; nothing is applied.
    func admit(_ scenario: Scenario, runID: String) async throws(AgentError) -> (RunSession, RunSession.Prepared) {
        let session = session(scenario, runID: runID)
        let prepared: RunSession.Prepared
        do { prepared = try await session.prepare() } catch {
            throw AgentError(.internalServerError, "journal", "cannot read the journal to check what earlier runs left: \(error); nothing was applied")
        }
        // A leftover in the way is named first: it is why the plan may also find the target taken.
        for case .leftover(let conflict) in prepared.refusals {
            throw AgentError(.conflict, "conflict", "\(conflict); nothing was applied", heldBy: conflict.run)
        }
        let details = prepared.refusals.map { AgentError.Detail(path: nil, line: nil, column: nil, message: "\($0)") }
        guard details.isEmpty else {
            throw AgentError(.unprocessableContent, "preflight_failed", "preflight failed on this agent; nothing was applied", details: details)
        }
        return (session, prepared)
    }

    /// Takes the state directory's locks on what the run acts on (the same locks as `faultline run` on this state
    /// directory, so an agent run and a CLI run on one interface, process or directory exclude each other) and
    /// starts it, or throws 409 naming the run that holds one of them; nothing is applied. False when the run
    /// ended meanwhile (a scheduled run aborted while it was being admitted): it must not start.
    func hold(_ run: AgentRun, _ session: RunSession, _ prepared: RunSession.Prepared) throws(AgentError) -> Bool {
        let locks: ClaimLocks
        do { locks = try session.lock(prepared) } catch {
            if let failure = error.failure {
                throw AgentError(.internalServerError, "journal", "cannot take the run's locks in \(failure); nothing was applied")
            }
            throw AgentError(.conflict, "conflict", "\(error); nothing was applied", heldBy: error.holderRun)
        }
        let started = run.begin(holding: locks) { status in
            status.state = .running
            status.startedAt = Date()
            if let lease = status.leaseSeconds { status.leaseExpiresAt = Date().addingTimeInterval(lease) }
        }
        if started { runs.withLock { $0[run.id] = run } }
        return started
    }

    /// Runs a started run through the engine in the registry's task group.
    func start(_ run: AgentRun, _ session: RunSession, _ prepared: RunSession.Prepared) {
        enqueue.yield { [self] in await execute(run, session, prepared) }
    }

    func execute(_ run: AgentRun, _ admitted: RunSession, _ prepared: RunSession.Prepared) async {
        // The same session, now with a log that feeds the run's status, stream and metrics.
        let session = session(admitted.scenario, runID: run.id, observe: run)
        let report = await session.execute(prepared, stop: run.stop, monitor: run.monitor)
        // The same reports as `faultline run --report DIR`, in the run's folder.
        do { try RunSession.writeReports(report, to: run.directory) } catch {
            log(.error, .journal, "cannot write the reports of run \(run.id) into \(run.directory): \(error)", run: run.id)
        }
        let snapshot = RunSnapshot(samples: report.probes, steadyState: session.scenario.spec.steadyState,
                                   now: report.endedAt.timeIntervalSince(report.startedAt))
        run.finish { status in
            status.state = report.state
            status.endedAt = report.endedAt
            status.exitCode = report.exitCode
            status.reason = status.reason ?? report.abortReason
            status.leaseExpiresAt = nil
            status.probes = snapshot.probes
            status.slo = snapshot.slo
            for fault in report.faults {
                guard let index = status.faults.firstIndex(where: { $0.name == fault.name }) else { continue }
                status.faults[index].state = fault.state
                status.faults[index].error = fault.error
            }
        }
        metrics.ended(report.state)
        if report.state == .aborted, let cause = run.abortCause ?? report.abortCause {
            metrics.aborted(cause)
        }
    }

    // MARK: Abort and leases

    /// Aborts one run: a running one reverts, a scheduled one is cancelled; an ended one is left as it is.
    public func abort(_ id: String, cause: AbortCause = .controller, reason: String = "aborted by the controller") throws(AgentError) -> RunStatus {
        let run = try run(id)
        switch run.status.state {
        case .scheduled where cancelScheduled(run, reason: reason + " before it started"):
            break
        case .scheduled, .running, .reverting:
            // .scheduled here: it started while this abort came in.
            if run.abort(cause: cause, reason: reason) { log(.warning, .abort, "\(reason): reverting run \(id)", run: id) }
        default: break
        }
        return run.status
    }

    /// The big red button: every running and scheduled run is stopped; cron schedules stay (unschedule removes them).
    public func abortAll(cause: AbortCause = .abortAll, reason: String = "aborted by the controller (abort all)") -> [RunStatus] {
        let affected = runs.withLock { Array($0.values) }.filter { !$0.status.state.isFinal }
        for run in affected { _ = try? abort(run.id, cause: cause, reason: reason) }
        return affected.map(\.status)
    }

    /// Renews a run's lease for its lease length (or `length`).
    public func renew(_ id: String, length: TimeSpan?) throws(AgentError) -> RunStatus {
        let run = try run(id)
        if let length, length.microseconds < 1_000_000 { throw AgentError.badRequest("lease '\(length)' is too short: at least 1s") }
        guard let seconds = length?.seconds ?? run.status.leaseSeconds else {
            throw AgentError(.conflict, "no_lease", "run '\(id)' was submitted without a lease; pass ?lease=DURATION to set one")
        }
        if !run.status.state.isFinal {
            run.update { status in
                status.leaseSeconds = seconds
                if status.state != .scheduled { status.leaseExpiresAt = Date().addingTimeInterval(seconds) }
            }
        }
        return run.status
    }

    func expireLeases(now: Date) {
        let expired = runs.withLock { Array($0.values) }.filter { run in
            let status = run.status
            return status.state == .running && (status.leaseExpiresAt.map { $0 <= now } ?? false)
        }
        for run in expired {
            let seconds = run.status.leaseSeconds.map { TimeSpan(microseconds: Int64($0 * 1_000_000)).description } ?? "?"
            _ = try? abort(run.id, cause: .lease, reason: "the controller's lease expired (not renewed within \(seconds))")
        }
    }

    // MARK: Service

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { [self] in
                    var lastKeepAlive = ContinuousClock.now
                    while !Task.isCancelled, await !shutdown.sleep(until: .now + configuration.tick) {
                        let now = Date()
                        expireLeases(now: now)
                        await fireDueSchedules(now: now)
                        if ContinuousClock.now - lastKeepAlive >= configuration.keepAlive {
                            lastKeepAlive = .now
                            for run in runs.withLock({ Array($0.values) }) where !run.status.state.isFinal { run.keepAlive() }
                        }
                    }
                }
                for await job in jobs { group.addTask { await job() } }
            }
        } onGracefulShutdown: { [self] in
            stopAll()
        }
    }

    /// Shutdown: no new runs, and every running run is reverted before the agent exits.
    func stopAll() {
        shutdown.fire(.interrupted)
        let active = runs.withLock { Array($0.values) }.filter { [.running, .reverting].contains($0.status.state) }
        if !active.isEmpty { log(.warning, .shutdown, "shutting down: reverting \(active.count) run(s) first") }
        for run in active { _ = run.abort(cause: .shutdown, reason: "the agent is shutting down") }
        enqueue.finish()
    }
}

extension RunRegistry {
    /// The plan (JSON) and the preflight of a scenario on this agent; nothing is run.
    public func dryRun(_ text: String, source: String) async throws(AgentError) -> (String, PreflightReport) {
        let scenario = try load(text, source: source)
        let prepared: RunSession.Prepared
        do { prepared = try await session(scenario, runID: RunID.derived(from: text)).prepare() } catch {
            throw AgentError(.internalServerError, "journal", "cannot read the journal: \(error)")
        }
        return ((try? PlanRenderer.json(prepared.plan)) ?? "null", prepared.preflight)
    }
}
