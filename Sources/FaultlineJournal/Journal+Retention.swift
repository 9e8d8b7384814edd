import FaultlineCore
import Foundation
import GRDB

/// How many finished runs a state directory keeps, and for how long (`--keep-runs`, `--keep-for`).
public struct Retention: Sendable, Hashable {
    /// The newest this many finished runs are kept.
    public var keepRuns: Int
    /// Finished runs that ended longer ago than this go; nil: no age bound.
    public var keepFor: TimeSpan?

    public static let defaultKeepRuns = 500
    public static let defaultKeepFor = TimeSpan(microseconds: 14 * 86_400 * 1_000_000)
    public static let standard = Retention(keepRuns: defaultKeepRuns, keepFor: defaultKeepFor)

    public init(keepRuns: Int, keepFor: TimeSpan?) {
        self.keepRuns = keepRuns
        self.keepFor = keepFor
    }

    /// Parses `--keep-for`: a duration (`12h`, `90m`) or whole days (`14d`); `0` turns the age bound off.
    public static func age(parsing text: String) throws(ValueError) -> TimeSpan? {
        if text == "0" { return nil }
        if text.hasSuffix("d"), let days = Int64(text.dropLast()), days > 0, days < 100_000 {
            return TimeSpan(microseconds: days * 86_400 * 1_000_000)
        }
        do {
            let span = try TimeSpan(parsing: text)
            return span.microseconds == 0 ? nil : span
        } catch {
            throw ValueError("invalid age '\(text)': use whole days (14d) or a duration (12h, 90m); 0 keeps runs for any age")
        }
    }

    /// A finished run as retention sees it.
    public struct Finished: Sendable, Hashable {
        public var id: String
        public var endedAt: Date

        public init(id: String, endedAt: Date) {
            self.id = id
            self.endedAt = endedAt
        }
    }

    /// The runs of `finished` to remove, oldest first: those beyond the newest `keepRuns`, and those that ended more
    /// than `keepFor` before `now`; never one in `protected` (a fault of it may still be on the host), which are kept
    /// besides the newest `keepRuns`, not among them.
    public func victims(_ finished: [Finished], now: Date, protected: Set<String>) -> [String] {
        let newestFirst = finished.filter { !protected.contains($0.id) }.sorted { ($0.endedAt, $0.id) > ($1.endedAt, $1.id) }
        let oldest = keepFor.map { now.addingTimeInterval(-$0.seconds) }
        var out: [String] = []
        for (rank, run) in newestFirst.enumerated() {
            if rank >= keepRuns || (oldest.map { run.endedAt < $0 } ?? false) { out.append(run.id) }
        }
        return out.reversed()
    }
}

extension Journal {
    /// Runs whose rows must stay: a fault of theirs may still be on the host (applying, active, or a revert that
    /// failed and was not acknowledged with `recover --forget`), or they still hold a namespace pin.
    public func keptForRecovery() throws(FaultlineError) -> Set<String> {
        try runsWithPendingFaults().union(runsWithPins())
    }

    /// Removes the finished runs beyond `retention` (their faults and pins go with them), never one kept for
    /// recovery or one that has not ended; the ids removed, oldest first.
    @discardableResult
    public func prune(_ retention: Retention, now: Date = Date()) throws(FaultlineError) -> [String] {
        let finished = try read { db in
            try Row.fetchAll(db, sql: "SELECT id, endedAt, startedAt FROM run WHERE state NOT IN ('scheduled', 'running', 'reverting')").map { row in
                Retention.Finished(id: row["id"], endedAt: Date(timeIntervalSince1970: (row["endedAt"] as Double?) ?? row["startedAt"]))
            }
        }
        let victims = retention.victims(finished, now: now, protected: try keptForRecovery())
        try delete(runs: victims)
        return victims
    }

    /// Removes these runs' rows (their faults and pins too) and one-shot schedules of the same id that are over,
    /// except runs kept for recovery. The caller decided they are finished.
    public func delete(runs ids: [String]) throws(FaultlineError) {
        guard !ids.isEmpty else { return }
        let kept = try keptForRecovery()
        let gone = ids.filter { !kept.contains($0) }
        for chunk in stride(from: 0, to: gone.count, by: 500).map({ Array(gone[$0..<min($0 + 500, gone.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            try write { db in
                try db.execute(sql: "DELETE FROM fault WHERE runID IN (\(marks))", arguments: StatementArguments(chunk))
                try db.execute(sql: "DELETE FROM pin WHERE runID IN (\(marks))", arguments: StatementArguments(chunk))
                try db.execute(sql: "DELETE FROM run WHERE id IN (\(marks))", arguments: StatementArguments(chunk))
                try db.execute(sql: "DELETE FROM schedule WHERE kind = 'at' AND state != 'active' AND id IN (\(marks))", arguments: StatementArguments(chunk))
            }
        }
    }

    /// Gives space back after pruning: the write-ahead log is checkpointed and truncated, and when free pages are
    /// over a quarter of the file (and over 1 MiB) the database is rewritten without them (VACUUM). Both wait for
    /// readers (a guard) only as long as the busy timeout; failing, it is tried again after the next prune.
    public func compact() throws(FaultlineError) {
        let (pages, free, pageSize) = try read { db in
            (try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0, try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0,
             try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096)
        }
        do {
            try database.writeWithoutTransaction { db in
                if free * 4 > pages, free * pageSize > 1 << 20 { try db.execute(sql: "VACUUM") }
                _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
        } catch {
            throw FaultlineError(.io, "cannot compact the journal in \(directory)", cause: "\(error)")
        }
    }
}
