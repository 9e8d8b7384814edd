import FaultlineCore
import FaultlineEngine
import FaultlineJournal
import FaultlineSystem
import Foundation

/// Submitting a run: the scenario checked against what this agent accepts, then planned, checked, locked and run
/// through the same `RunSession` as `faultline run`.
extension RunRegistry {
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
        let id = newRunID()
        if let at = options.at {
            guard at > Date() else { throw AgentError.badRequest("'at' \(ISO8601DateFormatter().string(from: at)) is in the past") }
            guard at < Date().addingTimeInterval(366 * 86_400) else {
                throw AgentError.badRequest("'at' \(ISO8601DateFormatter().string(from: at)) is more than a year away: schedule it closer, or use a cron schedule")
            }
            // A fleet's one-shot game day goes to every node; one that runs none of its pods says so now, as for a
            // run that starts at once (pods that leave before the time make the run fail then, with the reason).
            if !scenario.pods.isEmpty {
                let found = await ContainerResolver(socket: configuration.runtimeSocket).resolvePods(scenario)
                if !found.absentPods.isEmpty {
                    throw AgentError(.unprocessableContent, "no_pods_here", "none of the scenario's pods runs on this node; nothing was scheduled",
                                     details: found.absentPods.sorted().map { AgentError.Detail(path: nil, line: nil, column: nil, message: found.problems[$0] ?? $0) })
                }
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
        settings.runtimeSocket = configuration.runtimeSocket
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

    /// Plans the scenario here and runs the preflight: 422 `no_pods_here` when a pod target has no pod on this node
    /// (a fleet's other agents may have them), 409 naming a leftover in the way, 422 with the failed checks when it
    /// cannot run; nothing is applied.
    func admit(_ scenario: Scenario, runID: String) async throws(AgentError) -> (RunSession, RunSession.Prepared) {
        let session = session(scenario, runID: runID)
        let prepared: RunSession.Prepared
        do { prepared = try await session.prepare(recovering: true) } catch {
            throw AgentError(.internalServerError, "journal", "cannot read the journal to check what earlier runs left: \(error); nothing was applied")
        }
        if !prepared.absentPods.isEmpty {
            throw AgentError(.unprocessableContent, "no_pods_here", "none of the scenario's pods runs on this node; nothing was applied",
                             details: prepared.refusals.map { AgentError.Detail(path: nil, line: nil, column: nil, message: "\($0)") })
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
        // The burn rate over the window that ends with the method's last result (results count from the method's start).
        let snapshot = RunSnapshot(samples: report.probes, steadyState: session.scenario.spec.steadyState,
                                   now: report.probes.last { $0.phase == .method }?.at ?? 0)
        // Counted before the final state shows, so that whoever sees the state sees it counted.
        metrics.ended(report.state)
        if report.state == .aborted, let cause = report.abortCause ?? run.abortCause {
            metrics.aborted(cause)
        }
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
        // Its results are in the report and the final status now.
        run.monitor.detach()
        retire(run)
    }
}
