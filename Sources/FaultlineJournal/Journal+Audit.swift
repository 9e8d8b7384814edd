import FaultlineCore
import Foundation
import GRDB

/// One request that changes something, kept in the audit log: every POST and DELETE an agent is sent (refused
/// ones too) and every `recover --forget` on this host.
public struct AuditEntry: Sendable, Hashable, Codable {
    /// Ascending, for paging (`after`).
    public var seq: Int64
    public var time: Date
    /// The token's name; `-` when no known token was presented; `local:USER` for a command run on this host.
    public var token: String
    /// The token's role; nil when no known token was presented.
    public var role: String?
    /// The client's address (`10.0.0.5:51234`), `local` for a command run on this host.
    public var peer: String
    /// submit, dry-run, abort, abort-all, lease, schedule, unschedule, forget; else METHOD PATH.
    public var action: String
    /// The run or schedule it was about, when there is one.
    public var target: String?
    /// The HTTP status answered; 0 for a command run on this host.
    public var status: Int
    /// `ok`, else the error code (`unauthorized`, `forbidden`, `conflict`, …) and what was not recorded.
    public var result: String

    public init(seq: Int64 = 0, time: Date, token: String, role: String?, peer: String, action: String, target: String?, status: Int, result: String) {
        self.seq = seq
        self.time = time
        self.token = token
        self.role = role
        self.peer = peer
        self.action = action
        self.target = target
        self.status = status
        self.result = result
    }
}

extension Journal {
    /// How many audit entries of known tokens (and local commands) are kept; older ones are removed as new ones come.
    public static let auditLimit = 100_000
    /// How many entries of requests without a known token are kept, apart: a flood of them never pushes out
    /// what the tokens did.
    public static let auditRefusalLimit = 10_000

    /// Adds an entry; every thousandth one trims each kind to its newest entries.
    public func audit(_ entry: AuditEntry) throws(FaultlineError) {
        try write { db in
            try db.execute(sql: """
                INSERT INTO audit (time, token, role, peer, action, target, status, result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [entry.time.timeIntervalSince1970, String(entry.token.prefix(128)), entry.role, String(entry.peer.prefix(128)),
                                 String(entry.action.prefix(128)), entry.target.map { String($0.prefix(128)) }, entry.status, String(entry.result.prefix(512))])
            let seq = db.lastInsertedRowID
            if seq % 1_000 == 0 {
                for (kind, limit) in [("token = '-'", Self.auditRefusalLimit), ("token != '-'", Self.auditLimit)] {
                    try db.execute(sql: "DELETE FROM audit WHERE \(kind) AND seq <= (SELECT seq FROM audit WHERE \(kind) ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                                   arguments: [limit])
                }
            }
        }
    }

    /// At most `limit` entries, oldest first: those after `seq`, or without it the newest.
    public func auditEntries(after seq: Int64? = nil, limit: Int = 100) throws(FaultlineError) -> [AuditEntry] {
        try read { db in
            let newest = seq == nil
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM audit WHERE seq > ? ORDER BY seq \(newest ? "DESC" : "ASC") LIMIT ?",
                                        arguments: [seq ?? 0, limit])
            let entries = rows.map { row in
                AuditEntry(seq: row["seq"], time: Date(timeIntervalSince1970: row["time"]), token: row["token"], role: row["role"], peer: row["peer"],
                           action: row["action"], target: row["target"], status: row["status"], result: row["result"])
            }
            return newest ? entries.reversed() : entries
        }
    }
}
