import FaultlineCore
import FaultlineSystem
import Foundation
import GRDB

/// A run as the journal knows it: enough for a guard or `recover` to find and undo what it left.
public struct RunEntry: Sendable, Hashable, Codable {
    /// Run states of SPEC §3 (the journal writes running to inconclusive, never scheduled).
    public typealias State = RunState

    public var id: String
    public var scenario: String
    public var state: State
    public var startedAt: Date
    public var endedAt: Date?
    public var runner: ProcessIdentity
    /// When the guard reverts even if the runner still lives: maxDuration plus a grace period.
    public var deadline: Date
    public var reason: String?

    public init(id: String, scenario: String, state: State, startedAt: Date, endedAt: Date? = nil, runner: ProcessIdentity, deadline: Date, reason: String? = nil) {
        self.id = id
        self.scenario = scenario
        self.state = state
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.runner = runner
        self.deadline = deadline
        self.reason = reason
    }
}

/// One fault of a run and what undoes it.
public struct FaultEntry: Sendable, Hashable {
    /// `applying`: its revert record is written and commands may be under way; `forgotten`: acknowledged after a
    /// manual cleanup. The journal never writes pending, degraded or not-injected.
    public typealias State = FaultRunState

    public var runID: String
    public var name: String
    public var type: FaultType
    public var state: State
    public var record: RevertRecord
    public var error: String?
}

/// The write-ahead journal: SQLite in WAL mode with synchronous writes, shared by the runner, its guard
/// and `faultline recover`. A reserve file on the same filesystem is given up when the disk is full,
/// so the journal can still record a revert while a disk-fill fault fills its filesystem.
public final class Journal: Sendable {
    public let directory: String
    let database: DatabaseQueue
    let reservePath: String
    public static let reserveSize = 4 << 20

    public init(directory: String) throws(FaultlineError) {
        self.directory = directory
        reservePath = directory + "/journal.reserve"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // Processes that open a new journal at the same instant (two runs started together) take turns to set it
            // up: SQLite alone lets both try to create its tables.
            let lock = FileLock.exclusive(directory + "/journal.lock")
            defer { lock.release() }
            var configuration = Configuration()
            configuration.busyMode = .timeout(10)
            configuration.prepareDatabase { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // The write-ahead log is checkpointed once it holds 1 MiB (256 pages, not SQLite's 4 MiB: a run writes
                // about 50 KB of it), and cut back to 1 MiB after, not left at the largest it ever grew to.
                _ = try Row.fetchOne(db, sql: "PRAGMA wal_autocheckpoint = 256")
                _ = try Row.fetchOne(db, sql: "PRAGMA journal_size_limit = 1048576")
            }
            database = try DatabaseQueue(path: directory + "/journal.sqlite", configuration: configuration)
            _ = try database.writeWithoutTransaction { db in try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
            try Self.migrator.migrate(database)
        } catch {
            throw FaultlineError(.io, "cannot open the journal in \(directory)", cause: Self.reason(error))
        }
        reserveProblem = Self.keepReserve(at: reservePath)
    }

    /// Why the journal cannot be opened, in words: a missing permission says what would give it, not Foundation's
    /// NSCocoaErrorDomain dump.
    static func reason(_ error: any Error) -> String {
        let nsError = error as NSError
        var posix: Int?
        var current: NSError? = nsError
        while let found = current {
            if found.domain == NSPOSIXErrorDomain { posix = found.code; break }
            current = found.userInfo[NSUnderlyingErrorKey] as? NSError
        }
        let permission = posix == Int(EACCES) || posix == Int(EPERM) || posix == Int(EROFS)
            || (nsError.domain == NSCocoaErrorDomain && [257, 513, 642].contains(nsError.code))
        if permission {
            let path = (nsError.userInfo[NSFilePathErrorKey] as? String).map { " ('\($0)')" } ?? ""
            return "permission denied\(path): run as root (or with CAP_DAC_OVERRIDE), or give --state-dir a directory you can write"
        }
        if let posix, let text = strerror(Int32(posix)) { return String(cString: text) }
        return nsError.domain == NSCocoaErrorDomain ? nsError.localizedDescription : "\(error)"
    }

    /// Why the disk-full reserve could not be kept (too little room), or nil when it is there.
    public let reserveProblem: String?

    /// The reserve of the journal in `directory`, in words, without making anything: for `doctor`.
    public static func reserveStatus(directory: String) -> String {
        let path = directory + "/journal.reserve"
        var info = stat()
        if stat(path, &info) == 0, info.st_blocks * 512 >= off_t(reserveSize) {
            return "the journal in \(directory) keeps its \(reserveSize >> 20) MiB reserve for a full disk"
        }
        var existing = directory
        while !FileManager.default.fileExists(atPath: existing), existing != "/" { existing = (existing as NSString).deletingLastPathComponent }
        var fs = statvfs()
        let free = statvfs(existing, &fs) == 0 ? UInt64(fs.f_bavail) * UInt64(fs.f_frsize) : 0
        if free < UInt64(reserveSize) {
            return "warning: the journal in \(directory) has no \(reserveSize >> 20) MiB reserve and only \(free >> 10) KiB are free there: a disk-fill on that filesystem could leave no room to record a revert; move --state-dir or free space"
        }
        return "the journal in \(directory) will keep a \(reserveSize >> 20) MiB reserve for a full disk (\(free >> 20) MiB free there)"
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE run (
                  id TEXT PRIMARY KEY, scenario TEXT NOT NULL, state TEXT NOT NULL,
                  startedAt DOUBLE NOT NULL, endedAt DOUBLE, runnerPID INTEGER NOT NULL, runnerStartTime INTEGER NOT NULL,
                  runnerName TEXT NOT NULL, deadline DOUBLE NOT NULL, reason TEXT);
                CREATE TABLE fault (
                  runID TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE, name TEXT NOT NULL, type TEXT NOT NULL,
                  state TEXT NOT NULL, record TEXT NOT NULL, updatedAt DOUBLE NOT NULL, error TEXT,
                  PRIMARY KEY (runID, name));
                """)
        }
        migrator.registerMigration("v2-schedules") { db in
            try db.execute(sql: """
                CREATE TABLE schedule (
                  id TEXT PRIMARY KEY, kind TEXT NOT NULL, scenario TEXT NOT NULL, source TEXT NOT NULL,
                  cron TEXT, timeZone TEXT NOT NULL, at DOUBLE, nextAt DOUBLE, lease DOUBLE,
                  createdAt DOUBLE NOT NULL, lastRunID TEXT, lastFiredAt DOUBLE, missed TEXT NOT NULL DEFAULT '[]',
                  state TEXT NOT NULL);
                """)
        }
        migrator.registerMigration("v3-pins") { db in
            try db.execute(sql: """
                CREATE TABLE pin (
                  runID TEXT NOT NULL REFERENCES run(id) ON DELETE CASCADE, path TEXT NOT NULL, source TEXT NOT NULL,
                  device INTEGER NOT NULL, inode INTEGER NOT NULL, PRIMARY KEY (runID, path));
                """)
        }
        migrator.registerMigration("v4-audit") { db in
            try db.execute(sql: """
                CREATE TABLE audit (
                  seq INTEGER PRIMARY KEY AUTOINCREMENT, time DOUBLE NOT NULL, token TEXT NOT NULL, role TEXT, peer TEXT NOT NULL,
                  action TEXT NOT NULL, target TEXT, status INTEGER NOT NULL, result TEXT NOT NULL);
                """)
        }
        migrator.registerMigration("v5-schedule-skips") { db in
            try db.execute(sql: "ALTER TABLE schedule ADD COLUMN lastSkipReason TEXT")
        }
        return migrator
    }

    /// Keeps a preallocated reserve file, when there is room for one; why not, when there is not.
    static func keepReserve(at path: String) -> String? {
        ReserveFile.keep(at: path, size: reserveSize, name: "journal reserve").map {
            "\($0): if a disk-fill fills that filesystem, the journal may have no room to record a revert"
        }
    }

    /// Runs a write; when the disk is full, gives up the reserve and tries once more.
    func write(_ body: @Sendable (Database) throws -> Void) throws(FaultlineError) {
        do {
            try database.write(body)
        } catch let error as DatabaseError where [.SQLITE_FULL, .SQLITE_IOERR].contains(error.resultCode) {
            ReserveFile.release(at: reservePath)
            do { try database.write(body) } catch {
                throw FaultlineError(.io, "cannot write the journal in \(directory) even after releasing its reserve", cause: "\(error)")
            }
        } catch {
            throw FaultlineError(.io, "cannot write the journal in \(directory)", cause: "\(error)")
        }
    }

    func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws(FaultlineError) -> T {
        do { return try database.read(body) } catch {
            throw FaultlineError(.io, "cannot read the journal in \(directory)", cause: "\(error)")
        }
    }

    // MARK: Runs

    public func begin(_ run: RunEntry) throws(FaultlineError) {
        try write { db in
            try db.execute(sql: """
                INSERT INTO run (id, scenario, state, startedAt, runnerPID, runnerStartTime, runnerName, deadline)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [run.id, run.scenario, run.state.rawValue, run.startedAt.timeIntervalSince1970,
                                 run.runner.pid, Int64(run.runner.startTime), run.runner.name, run.deadline.timeIntervalSince1970])
        }
    }

    public func setState(_ state: RunEntry.State, of runID: String, reason: String? = nil) throws(FaultlineError) {
        let ended: Double? = state.isFinal ? Date().timeIntervalSince1970 : nil
        try write { db in
            try db.execute(sql: "UPDATE run SET state = ?, endedAt = COALESCE(?, endedAt), reason = COALESCE(?, reason) WHERE id = ?",
                           arguments: [state.rawValue, ended, reason, runID])
        }
    }

    public func run(_ id: String) throws(FaultlineError) -> RunEntry? {
        try read { db in try Row.fetchOne(db, sql: "SELECT * FROM run WHERE id = ?", arguments: [id]).map(Self.run) }
    }

    public func runs() throws(FaultlineError) -> [RunEntry] {
        try read { db in try Row.fetchAll(db, sql: "SELECT * FROM run ORDER BY startedAt").map(Self.run) }
    }

    static func run(_ row: Row) -> RunEntry {
        RunEntry(id: row["id"], scenario: row["scenario"], state: RunEntry.State(rawValue: row["state"]) ?? .failed,
                 startedAt: Date(timeIntervalSince1970: row["startedAt"]),
                 endedAt: (row["endedAt"] as Double?).map(Date.init(timeIntervalSince1970:)),
                 runner: ProcessIdentity(pid: row["runnerPID"], startTime: UInt64(row["runnerStartTime"] as Int64), name: row["runnerName"]),
                 deadline: Date(timeIntervalSince1970: row["deadline"]), reason: row["reason"])
    }

    // MARK: Namespace pins

    /// Records a pin before it is made, so whoever finishes the run (runner, guard, recover) can remove it.
    public func recordPin(_ pin: PinnedNamespace, runID: String) throws(FaultlineError) {
        try write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO pin (runID, path, source, device, inode) VALUES (?, ?, ?, ?, ?)",
                           arguments: [runID, pin.path, pin.source, Int64(bitPattern: pin.identity.device), Int64(bitPattern: pin.identity.inode)])
        }
    }

    /// The pins a run holds.
    public func pins(of runID: String) throws(FaultlineError) -> [PinnedNamespace] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM pin WHERE runID = ? ORDER BY path", arguments: [runID]).map { row in
                PinnedNamespace(path: row["path"], source: row["source"],
                                identity: NamespaceIdentity(device: UInt64(bitPattern: row["device"] as Int64), inode: UInt64(bitPattern: row["inode"] as Int64)))
            }
        }
    }

    /// Runs that still hold pins.
    public func runsWithPins() throws(FaultlineError) -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT DISTINCT runID FROM pin ORDER BY runID") }
    }

    /// Forgets a pin once it is removed.
    public func forgetPin(_ path: String, runID: String) throws(FaultlineError) {
        try write { db in try db.execute(sql: "DELETE FROM pin WHERE runID = ? AND path = ?", arguments: [runID, path]) }
    }

    // MARK: Faults

    /// Writes a fault's revert record (before the step it undoes), or replaces it.
    public func record(runID: String, fault: String, type: FaultType, state: FaultEntry.State, record: RevertRecord, error: String? = nil) throws(FaultlineError) {
        let json: String
        do { json = String(decoding: try JSONEncoder().encode(record), as: UTF8.self) } catch {
            throw FaultlineError(.internalError, "cannot encode a revert record", cause: "\(error)")
        }
        try write { db in
            try db.execute(sql: """
                INSERT INTO fault (runID, name, type, state, record, updatedAt, error) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (runID, name) DO UPDATE SET state = excluded.state, record = excluded.record,
                  updatedAt = excluded.updatedAt, error = excluded.error
                """, arguments: [runID, fault, type.rawValue, state.rawValue, json, Date().timeIntervalSince1970, error])
        }
    }

    public func setState(_ state: FaultEntry.State, runID: String, fault: String, error: String? = nil) throws(FaultlineError) {
        try write { db in
            try db.execute(sql: "UPDATE fault SET state = ?, error = ?, updatedAt = ? WHERE runID = ? AND name = ?",
                           arguments: [state.rawValue, error, Date().timeIntervalSince1970, runID, fault])
        }
    }

    /// A run's faults; throws when any of them cannot be read (its revert record would be lost in silence).
    public func faults(of runID: String) throws(FaultlineError) -> [FaultEntry] {
        let rows = try faultRows(of: runID)
        if let bad = rows.unreadable.first { throw bad.error }
        return rows.readable
    }

    /// A run's faults that can be read, and those that cannot (with why): the revert path reverts the first and
    /// reports the second, never drops them.
    public func faultRows(of runID: String) throws(FaultlineError) -> (readable: [FaultEntry], unreadable: [(name: String, error: FaultlineError)]) {
        let rows = try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM fault WHERE runID = ? ORDER BY updatedAt", arguments: [runID]).map { (name: $0["name"] as String, fault: Self.fault($0)) }
        }
        var readable: [FaultEntry] = []
        var unreadable: [(name: String, error: FaultlineError)] = []
        for row in rows {
            switch row.fault {
            case .success(let entry): readable.append(entry)
            case .failure(let error): unreadable.append((row.name, error))
            }
        }
        return (readable, unreadable)
    }

    /// Faults of any run that may still be on the host; throws when one of them cannot be read.
    public func pendingFaults() throws(FaultlineError) -> [FaultEntry] {
        let rows = try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM fault WHERE state IN ('applying', 'active', 'revert-failed') ORDER BY updatedAt DESC").map(Self.fault)
        }
        var entries: [FaultEntry] = []
        for row in rows {
            switch row {
            case .success(let entry): entries.append(entry)
            case .failure(let error): throw error
            }
        }
        return entries
    }

    /// Acknowledges faults of `runID` that may still be in place (all of them, or `fault`) after a manual cleanup:
    /// they are kept, marked `forgotten` with `note`, and block nothing any more; the names acknowledged.
    public func forget(runID: String, fault: String?, note: String) throws(FaultlineError) -> [String] {
        let names = try read { db in
            try String.fetchAll(db, sql: "SELECT name FROM fault WHERE runID = ? AND state IN ('applying', 'active', 'revert-failed')" + (fault == nil ? "" : " AND name = ?"),
                                arguments: StatementArguments(fault == nil ? [runID] : [runID, fault!]))
        }
        for name in names {
            try write { db in
                try db.execute(sql: "UPDATE fault SET state = 'forgotten', error = COALESCE(error || '; ', '') || ?, updatedAt = ? WHERE runID = ? AND name = ?",
                               arguments: [note, Date().timeIntervalSince1970, runID, name])
            }
        }
        return names
    }

    /// Runs with a fault that may still be on the host, read or not.
    public func runsWithPendingFaults() throws(FaultlineError) -> Set<String> {
        try read { db in
            Set(try String.fetchAll(db, sql: "SELECT DISTINCT runID FROM fault WHERE state IN ('applying', 'active', 'revert-failed')"))
        }
    }

    static func fault(_ row: Row) -> Result<FaultEntry, FaultlineError> {
        let runID: String = row["runID"], name: String = row["name"]
        guard let type = FaultType(rawValue: row["type"]), let state = FaultEntry.State(rawValue: row["state"]) else {
            return .failure(FaultlineError(.io, "fault '\(name)' of run \(runID) has an unknown type or state in the journal (\(row["type"] as String), \(row["state"] as String)); it may still be on the host"))
        }
        do {
            let record = try JSONDecoder().decode(RevertRecord.self, from: Data((row["record"] as String).utf8))
            return .success(FaultEntry(runID: runID, name: name, type: type, state: state, record: record, error: row["error"]))
        } catch {
            return .failure(FaultlineError(.io, "the journal's revert record of fault '\(name)' of run \(runID) cannot be read (a newer faultline wrote it?); it may still be on the host: undo it by hand", cause: "\(error)"))
        }
    }
}
