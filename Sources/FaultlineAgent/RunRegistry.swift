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

    /// Runs that have not ended (scheduled, running, reverting).
    let runs = Mutex<[String: AgentRun]>([:])
    /// Runs that ended, kept in their folders until retention removes them.
    let finished = Mutex<[String: FinishedRun]>([:])
    let prunedSinceCompact = Mutex(0)
    let stateMeasured = Mutex<ContinuousClock.Instant?>(nil)
    let schedules = Mutex<[String: ScheduleEntry]>([:])
    private let port = Mutex<UInt16?>(nil)
    private let jobs: AsyncStream<@Sendable () async -> Void>
    let enqueue: AsyncStream<@Sendable () async -> Void>.Continuation
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
        prune()
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

    /// Earlier runs from their folders: finished ones into the index (their events stay on disk), scheduled ones
    /// into memory; one that was running when the agent stopped ends failed.
    func loadRuns() {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runsDirectory)) ?? []
        var loaded: [String: AgentRun] = [:]
        var ended: [String: FinishedRun] = [:]
        let decoder = JSONDecoder.api
        for name in names where RunID.isValid(name) {
            guard let data = FileManager.default.contents(atPath: runsDirectory + "/" + name + "/status.json"),
                  let status = try? decoder.decode(RunStatus.self, from: data), status.id == name else { continue }
            if status.state.isFinal {
                ended[name] = FinishedRun(status)
                continue
            }
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
                ended[run.id] = FinishedRun(run.status)
                continue
            }
            loaded[run.id] = run
        }
        runs.withLock { $0.merge(loaded) { current, _ in current } }
        finished.withLock { $0.merge(ended) { current, _ in current } }
    }

    // MARK: Runs

    func run(_ id: String) throws(AgentError) -> AgentRun {
        guard let run = lookup(id) else { throw AgentError.notFound("no run '\(id)' on this agent") }
        return run
    }

    public func status(_ id: String) throws(AgentError) -> RunStatus { try run(id).liveStatus }

    /// The audit log's entries after `seq`, oldest first; without `seq`, the newest `limit`.
    func audit(after seq: Int64?, limit: Int) throws(AgentError) -> [AuditEntry] {
        do { return try journal.auditEntries(after: seq, limit: limit) } catch {
            throw AgentError(.internalServerError, "journal", "cannot read the audit log: \(error)")
        }
    }

    /// Makes a run known (a cron run that could not start still shows, with its reason).
    func registerIfNeeded(_ run: AgentRun) {
        guard !run.status.state.isFinal else { return }
        runs.withLock { runs in if runs[run.id] == nil { runs[run.id] = run } }
    }

    /// The report of a finished run, in `format`: the file the run wrote (report.json, .md, .html), else rendered
    /// from its report.json (JUnit).
    public func report(_ id: String, format: RunReport.Format = .json) throws(AgentError) -> Data {
        let run = try run(id)
        guard run.status.state.isFinal else {
            throw AgentError(.conflict, "not_finished", "run '\(id)' is \(run.status.state.rawValue); its report is written when it ends")
        }
        if RunReport.Format.files.contains(format), let written = FileManager.default.contents(atPath: run.directory + "/" + format.fileName) {
            return written
        }
        guard let data = FileManager.default.contents(atPath: run.directory + "/report.json") else {
            throw AgentError(.notFound, "no_report", "run '\(id)' ended without a report (\(run.status.reason ?? run.status.state.rawValue))")
        }
        guard format != .json else { return data }
        do { return try RunReport.decode(data).rendered(format) } catch {
            throw AgentError(.internalServerError, "no_report", "run '\(id)': its report.json cannot be read: \(error)")
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
        // Plans only: what dead runs left is not reverted here (a submit does that).
        do { prepared = try await session(scenario, runID: RunID.derived(from: text)).prepare(recovering: false) } catch {
            throw AgentError(.internalServerError, "journal", "cannot read the journal: \(error)")
        }
        return ((try? PlanRenderer.json(prepared.plan)) ?? "null", prepared.preflight)
    }
}
