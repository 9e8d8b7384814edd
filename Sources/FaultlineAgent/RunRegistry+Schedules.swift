import FaultlineCore
import FaultlineJournal
import Foundation

extension RunRegistry {
    /// Loads the schedules; one that fell due while the agent was down is recorded as missed, never run late.
    func loadSchedules(now: Date) {
        let stored: [ScheduleEntry]
        do { stored = try journal.schedules() } catch {
            log(.error, .schedule, "cannot read the schedules: \(error)")
            return
        }
        var kept: [String: ScheduleEntry] = [:]
        for var schedule in stored where schedule.state != .cancelled {
            if schedule.state == .active, let due = schedule.nextAt, due < now.addingTimeInterval(-1) {
                switch schedule.kind {
                case .at:
                    schedule.missed.append(due)
                    schedule.nextAt = nil
                    schedule.state = .missed
                    let when = ISO8601DateFormatter().string(from: due)
                    if let run = try? run(schedule.id) {
                        run.finish { status in
                            status.state = .failed
                            status.exitCode = 1
                            status.endedAt = now
                            status.reason = "missed: due at \(when) while the agent was not running; not run late"
                        }
                        retire(run)
                    }
                    log(.warning, .scheduleMissed, "run \(schedule.id) of \(schedule.scenario) was due at \(when) while the agent was down; not run late",
                        run: schedule.id)
                case .cron:
                    let zone = TimeZone(identifier: schedule.timeZone) ?? .gmt
                    guard let cron = try? CronExpression(schedule.cron ?? "") else { continue }
                    var time: Date? = due
                    var missed: [Date] = []
                    while let fire = time, fire < now, missed.count < 100 {
                        missed.append(fire)
                        time = cron.next(after: fire, in: zone)
                    }
                    schedule.missed.append(contentsOf: missed)
                    schedule.missed = Array(schedule.missed.suffix(100))
                    schedule.nextAt = cron.next(after: now, in: zone)
                    log(.warning, .scheduleMissed,
                        "schedule \(schedule.id) (\(schedule.scenario), '\(cron)') missed \(missed.count) time(s) while the agent was down, first at \(ISO8601DateFormatter().string(from: due)); not run late")
                }
                try? journal.save(schedule)
            }
            kept[schedule.id] = schedule
        }
        schedules.withLock { $0 = kept }
    }

    /// Starts every schedule that is due.
    func fireDueSchedules(now: Date) async {
        let due = schedules.withLock { schedules in
            schedules.values.filter { $0.state == .active && ($0.nextAt.map { $0 <= now } ?? false) }
        }
        for schedule in due { await fire(schedule, now: now) }
    }

    func fire(_ original: ScheduleEntry, now: Date) async {
        var schedule = original
        let runID: String
        let run: AgentRun
        switch schedule.kind {
        case .at:
            runID = schedule.id
            schedule.state = .done
            schedule.nextAt = nil
            guard let existing = try? self.run(runID), existing.status.state == .scheduled else {
                store(schedule)
                return
            }
            run = existing
        case .cron:
            runID = newRunID()
            let zone = TimeZone(identifier: schedule.timeZone) ?? .gmt
            schedule.nextAt = (try? CronExpression(schedule.cron ?? "")).flatMap { $0.next(after: now, in: zone) }
            run = AgentRun(status: RunStatus(id: runID, scenario: schedule.scenario, state: .scheduled, createdAt: now, scheduledAt: original.nextAt,
                                             leaseSeconds: schedule.lease, schedule: schedule.id, faults: []),
                           directory: runsDirectory + "/" + runID)
        }
        schedule.lastRunID = runID
        schedule.lastFiredAt = now
        schedule.lastSkipReason = nil
        store(schedule)

        let scenario: Scenario
        do { scenario = try load(schedule.source, source: "schedule \(schedule.id)") } catch {
            refuse(run, reason: "the stored scenario no longer loads: \(error.message)", exit: 2)
            return
        }
        run.update { status in
            status.faults = initialStatus(id: runID, scenario: scenario, state: .scheduled, scheduledAt: nil, schedule: nil, lease: nil).faults
        }
        do {
            let (session, prepared) = try await admit(scenario, runID: runID)
            guard try hold(run, session, prepared) else {
                log(.warning, .schedule, "run \(runID) of schedule \(schedule.id) was aborted before it started; nothing was applied", run: runID)
                return
            }
            log(.info, .schedule, "schedule \(schedule.id) starts run \(runID) of \(scenario.metadata.name)", run: runID)
            start(run, session, prepared)
        } catch where error.code == "no_pods_here" && schedule.kind == .cron {
            // A fleet's schedule fires on every node; one that runs none of the pods has nothing to do, which is
            // fine: no run is made, and the schedule says why.
            schedule.lastRunID = original.lastRunID
            schedule.lastSkipReason = "none of the scenario's pods ran on this node at \(ISO8601DateFormatter().string(from: now)); no run was made"
            store(schedule)
            log(.info, .schedule, "schedule \(schedule.id) of \(scenario.metadata.name): none of its pods runs on this node; nothing to do")
        } catch {
            let detail = error.details.map(\.message).joined(separator: "; ")
            refuse(run, reason: error.message + (detail.isEmpty ? "" : ": " + detail), exit: 3)
        }
    }

    /// A scheduled run that cannot start ends failed with the reason; nothing was applied.
    func refuse(_ run: AgentRun, reason: String, exit: Int32) {
        registerIfNeeded(run)
        run.finish { status in
            status.state = .failed
            status.exitCode = exit
            status.endedAt = Date()
            status.reason = "not started: \(reason)"
        }
        retire(run)
        metrics.ended(.failed)
        log(.error, .schedule, "run \(run.id) not started: \(reason)", run: run.id)
    }

    func store(_ schedule: ScheduleEntry) {
        schedules.withLock { $0[schedule.id] = schedule }
        do { try journal.save(schedule) } catch { log(.error, .schedule, "cannot save schedule \(schedule.id): \(error)") }
    }

    /// Cancels a run that has not started, and its one-shot schedule; false when it started meanwhile (then it must
    /// be aborted instead).
    @discardableResult
    func cancelScheduled(_ run: AgentRun, reason: String) -> Bool {
        let cancelled = run.cancelIfScheduled { status in
            status.state = .aborted
            status.exitCode = 1
            status.endedAt = Date()
            status.reason = reason
        }
        guard cancelled else { return false }
        retire(run)
        if var schedule = schedules.withLock({ $0[run.id] }) {
            schedule.state = .cancelled
            schedule.nextAt = nil
            store(schedule)
        }
        log(.warning, .abort, "\(reason): run \(run.id)", run: run.id)
        return true
    }

    // MARK: API

    /// Creates a cron schedule, with the id the request names (a bad one is refused, 400; one in use, 409) or a new one.
    public func schedule(_ request: ScheduleRequest, source: String) throws(AgentError) -> ScheduleStatus {
        if let id = request.id, !ScheduleID.isValid(id) {
            throw AgentError.badRequest("schedule id '\(id.prefix(64))' is not valid: use 's' and 1 to 15 lowercase letters and digits, such as s4c2e9a10, or leave 'id' out")
        }
        let scenario = try load(request.scenario, source: source)
        let cron: CronExpression
        do { cron = try CronExpression(request.cron) } catch { throw AgentError.badRequest(error.message) }
        let zoneName = request.timeZone ?? "UTC"
        guard let zone = TimeZone(identifier: zoneName) else {
            throw AgentError.badRequest("time zone '\(zoneName)' is unknown (use an IANA name such as Europe/Berlin or UTC)")
        }
        var lease: TimeSpan?
        if let text = request.lease {
            do { lease = try TimeSpan(parsing: text) } catch { throw AgentError.badRequest("lease '\(text)': \(error.message)") }
            if let lease, lease.microseconds < 1_000_000 { throw AgentError.badRequest("lease '\(text)' is too short: at least 1s") }
        }
        guard let next = cron.next(after: Date(), in: zone) else {
            throw AgentError.badRequest("cron '\(cron)' never fires in the next 5 years")
        }
        var schedule = ScheduleEntry(id: request.id ?? ScheduleID.random(), kind: .cron, scenario: scenario.metadata.name.rawValue,
                                     source: request.scenario, cron: cron.description, timeZone: zoneName, at: nil, nextAt: next,
                                     lease: lease?.seconds, createdAt: Date())
        // The id is claimed before the journal is written, so two requests with one id cannot both get it; an id the
        // agent made itself is made again until it is free.
        let claimed = schedules.withLock { schedules in
            while request.id == nil && schedules[schedule.id] != nil { schedule.id = ScheduleID.random() }
            guard schedules[schedule.id] == nil else { return false }
            schedules[schedule.id] = schedule
            return true
        }
        guard claimed else {
            throw AgentError(.conflict, "schedule_exists",
                             "schedule '\(schedule.id)' already exists on this agent: remove it first (faultline unschedule \(schedule.id)), or leave 'id' out to get a new one")
        }
        do { try journal.save(schedule) } catch {
            schedules.withLock { _ = $0.removeValue(forKey: schedule.id) }
            throw AgentError(.internalServerError, "journal", error.description)
        }
        log(.info, .schedule, "schedule \(schedule.id) of \(scenario.metadata.name): '\(cron)' in \(zoneName), next at \(ISO8601DateFormatter().string(from: next))")
        return Self.status(schedule)
    }

    /// Every schedule that is not removed, oldest first.
    public func listSchedules() -> [ScheduleStatus] {
        schedules.withLock { Array($0.values) }.filter { $0.state != .cancelled }
            .sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }.map(Self.status)
    }

    /// Removes a schedule; a pending one-shot run is cancelled with it.
    public func unschedule(_ id: String) throws(AgentError) {
        guard schedules.withLock({ $0[id] }) != nil else { throw AgentError.notFound("no schedule '\(id)' on this agent") }
        if let run = try? run(id), run.status.state == .scheduled {
            cancelScheduled(run, reason: "unscheduled")
        }
        _ = try? journal.deleteSchedule(id)
        schedules.withLock { _ = $0.removeValue(forKey: id) }
    }

    static func status(_ schedule: ScheduleEntry) -> ScheduleStatus {
        ScheduleStatus(id: schedule.id, kind: schedule.kind.rawValue, scenario: schedule.scenario, cron: schedule.cron, timeZone: schedule.timeZone,
                       at: schedule.at, nextAt: schedule.nextAt, leaseSeconds: schedule.lease, state: schedule.state.rawValue,
                       createdAt: schedule.createdAt, lastRunID: schedule.lastRunID, lastFiredAt: schedule.lastFiredAt,
                       lastSkipReason: schedule.lastSkipReason, missed: schedule.missed)
    }
}
