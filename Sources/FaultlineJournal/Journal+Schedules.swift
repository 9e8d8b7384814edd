import FaultlineCore
import Foundation
import GRDB
import Synchronization

/// A scenario the agent runs later: once at a time (`at`), or on a cron expression; kept across restarts.
public struct ScheduleEntry: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case at, cron }
    /// `active` waits for its next time; `done` has fired (at); `missed` was due while the agent was down (at);
    /// `cancelled` was removed before it fired.
    public enum State: String, Sendable, Codable { case active, done, missed, cancelled }

    public var id: String
    public var kind: Kind
    /// The scenario's metadata.name.
    public var scenario: String
    /// The scenario text as submitted, loaded again when the schedule fires.
    public var source: String
    public var cron: String?
    public var timeZone: String
    public var at: Date?
    /// When it fires next; nil once it never will.
    public var nextAt: Date?
    /// The lease each run gets, in seconds.
    public var lease: Double?
    public var createdAt: Date
    public var lastRunID: String?
    public var lastFiredAt: Date?
    /// Why the last firing started no run (a cron schedule whose pods run on none of this agent's node); nil once
    /// one starts.
    public var lastSkipReason: String?
    /// Times it was due while the agent was not running; reported, never run late.
    public var missed: [Date]
    public var state: State

    public init(id: String, kind: Kind, scenario: String, source: String, cron: String?, timeZone: String, at: Date?, nextAt: Date?,
                lease: Double?, createdAt: Date, lastRunID: String? = nil, lastFiredAt: Date? = nil, lastSkipReason: String? = nil, missed: [Date] = [], state: State = .active) {
        self.id = id
        self.kind = kind
        self.scenario = scenario
        self.source = source
        self.cron = cron
        self.timeZone = timeZone
        self.at = at
        self.nextAt = nextAt
        self.lease = lease
        self.createdAt = createdAt
        self.lastRunID = lastRunID
        self.lastFiredAt = lastFiredAt
        self.lastSkipReason = lastSkipReason
        self.missed = missed
        self.state = state
    }
}

extension Journal {
    /// Inserts or replaces a schedule.
    public func save(_ schedule: ScheduleEntry) throws(FaultlineError) {
        let missed = String(decoding: (try? JSONEncoder().encode(schedule.missed.map(\.timeIntervalSince1970))) ?? Data("[]".utf8), as: UTF8.self)
        try write { db in
            try db.execute(sql: """
                INSERT OR REPLACE INTO schedule (id, kind, scenario, source, cron, timeZone, at, nextAt, lease, createdAt,
                  lastRunID, lastFiredAt, lastSkipReason, missed, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [schedule.id, schedule.kind.rawValue, schedule.scenario, schedule.source, schedule.cron, schedule.timeZone,
                                 schedule.at?.timeIntervalSince1970, schedule.nextAt?.timeIntervalSince1970, schedule.lease,
                                 schedule.createdAt.timeIntervalSince1970, schedule.lastRunID, schedule.lastFiredAt?.timeIntervalSince1970,
                                 schedule.lastSkipReason, missed, schedule.state.rawValue])
        }
    }

    /// Every schedule, oldest first.
    public func schedules() throws(FaultlineError) -> [ScheduleEntry] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM schedule ORDER BY createdAt").map(Self.schedule) }
    }

    public func schedule(_ id: String) throws(FaultlineError) -> ScheduleEntry? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM schedule WHERE id = ?", arguments: [id]).map(Self.schedule) }
    }

    /// Removes a schedule; false when there was none.
    public func deleteSchedule(_ id: String) throws(FaultlineError) -> Bool {
        let removed = Mutex(false)
        try write { db in
            try db.execute(sql: "DELETE FROM schedule WHERE id = ?", arguments: [id])
            removed.withLock { $0 = db.changesCount > 0 }
        }
        return removed.withLock { $0 }
    }

    static func schedule(_ row: Row) -> ScheduleEntry {
        let missedText: String = row["missed"]
        let missed = ((try? JSONDecoder().decode([Double].self, from: Data(missedText.utf8))) ?? []).map(Date.init(timeIntervalSince1970:))
        return ScheduleEntry(
            id: row["id"], kind: ScheduleEntry.Kind(rawValue: row["kind"]) ?? .at, scenario: row["scenario"], source: row["source"],
            cron: row["cron"], timeZone: row["timeZone"], at: (row["at"] as Double?).map(Date.init(timeIntervalSince1970:)),
            nextAt: (row["nextAt"] as Double?).map(Date.init(timeIntervalSince1970:)), lease: row["lease"],
            createdAt: Date(timeIntervalSince1970: row["createdAt"]), lastRunID: row["lastRunID"],
            lastFiredAt: (row["lastFiredAt"] as Double?).map(Date.init(timeIntervalSince1970:)), lastSkipReason: row["lastSkipReason"], missed: missed,
            state: ScheduleEntry.State(rawValue: row["state"]) ?? .active)
    }
}
