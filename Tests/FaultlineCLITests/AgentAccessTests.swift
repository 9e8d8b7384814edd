import FaultlineAgent
import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Named tokens with roles and the audit log (docs/agent.md, Trust model): `read` sees, `operate` changes; every
/// POST and DELETE — refused ones too — is recorded with the token's name, the client's address, the action, the
/// run or schedule and the answer, kept in the journal, served at GET /v1/audit and shown by `faultline audit`.
@Suite(.serialized, .enabled(if: Privilege.isRoot, "needs root: the agent's preflight of a submitted run"))
struct AgentAccessTests {
    static let operate = "op-" + String(repeating: "a", count: 40)
    static let read = "rd-" + String(repeating: "b", count: 40)

    func writeTokens(_ path: String, _ lines: String, mode: mode_t = 0o600) throws {
        unlink(path)
        _ = FileManager.default.createFile(atPath: path, contents: Data(lines.utf8), attributes: [.posixPermissions: Int(mode)])
    }

    @Test("a read token sees but may not change (403, recorded); an operate token submits, aborts, schedules; the audit log says who did what from where, in order")
    func rolesAndAudit() async throws {
        let directory = try makeTestDirectory("access")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        let tokens = directory + "/tokens"
        try writeTokens(tokens, "# name role token\nalice operate \(Self.operate)\nbob   read    \(Self.read)\n")
        let scenario = agentScenario("access", faults: pauseFault("freeze", sleepers: sleepers, duration: "1s"))
        let later = APIDate.format(Date().addingTimeInterval(3_600))
        let cron = String(decoding: try JSONSerialization.data(withJSONObject: ["scenario": scenario, "cron": "0 3 * * *"]), as: UTF8.self)

        try await withTestAgent(directory: directory, state: directory + "/state", token: nil, extra: ["--tokens-file", tokens]) { agent in
            #expect(!FileManager.default.fileExists(atPath: directory + "/state/agent.token"), "with a tokens file the agent makes no token of its own")
            // read: every GET, no change.
            for path in ["/v1/runs", "/v1/schedules", "/metrics", "/v1/audit"] {
                #expect(try await agent.call(.GET, path, token: Self.read).status == 200, "\(path) with the read token")
            }
            let refused = try await agent.call(.POST, "/v1/runs?at=\(later)", body: scenario, token: Self.read)
            #expect(refused.status == 403)
            #expect(refused.body.contains("token 'bob' has the role read, which may not POST /v1/runs: that needs the role operate"), "\(refused.body)")
            #expect(try await agent.call(.POST, "/v1/abort", token: Self.read).status == 403)
            #expect(try await agent.call(.POST, "/v1/abort", token: "x" + Self.operate).status == 401)

            // operate: a parked run (nothing applied) submitted and aborted, a schedule made and removed.
            let created = try await agent.call(.POST, "/v1/runs?at=\(later)", body: scenario, token: Self.operate)
            #expect(created.status == 201, "\(created.body)")
            let run = try #require(created.json["id"] as? String)
            #expect(try await agent.call(.POST, "/v1/runs/\(run)/abort", token: Self.operate).status == 200)
            let scheduled = try await agent.call(.POST, "/v1/schedules", body: cron, token: Self.operate)
            #expect(scheduled.status == 201, "\(scheduled.body)")
            let schedule = try #require(scheduled.json["id"] as? String)
            #expect(scheduled.headers.first(name: "Location") == "/v1/schedules/\(schedule)")
            #expect(try await agent.call(.DELETE, "/v1/schedules/\(schedule)", token: Self.operate).status == 204)

            let entries = try #require(try await agent.call(.GET, "/v1/audit", token: Self.read).json["entries"] as? [[String: Any]])
            let summary = entries.map { entry in
                "\(entry["token"] as? String ?? "?") \(entry["role"] as? String ?? "-") \(entry["action"] as? String ?? "?") \(entry["target"] as? String ?? "-") \(entry["status"] as? Int ?? 0) \(entry["result"] as? String ?? "?")"
            }
            #expect(summary == [
                "bob read submit - 403 forbidden",
                "bob read abort-all - 403 forbidden",
                "- - abort-all - 401 unauthorized",
                "alice operate submit \(run) 201 ok",
                "alice operate abort \(run) 200 ok",
                "alice operate schedule \(schedule) 201 ok",
                "alice operate unschedule \(schedule) 204 ok",
            ], "\(entries)")
            #expect(entries.allSatisfy { ($0["peer"] as? String)?.hasPrefix("127.0.0.1:") == true }, "\(entries)")
            // Paging: after the third entry come the other four.
            let third = try #require(entries[2]["seq"] as? Int)
            let after = try #require(try await agent.call(.GET, "/v1/audit?after=\(third)", token: Self.read).json["entries"] as? [[String: Any]])
            #expect(after.count == 4)
            let fromStart = try #require(try await agent.call(.GET, "/v1/audit?after=0&limit=3", token: Self.read).json["entries"] as? [[String: Any]])
            #expect(fromStart.map { $0["seq"] as? Int } == entries.prefix(3).map { $0["seq"] as? Int }, "after=0 pages from the first entry")
            #expect(try await agent.call(.GET, "/v1/audit?limit=0", token: Self.read).status == 400)
            // A path made to forge a log line (escape sequences, a new line) is not logged raw.
            #expect(try await agent.call(.POST, "/v1/runs/%1b%5b2K%0aforged/abort", token: .some(nil)).status == 401)
            let forged = try #require(try await agent.call(.GET, "/v1/audit?limit=1", token: Self.read).json["entries"] as? [[String: Any]])
            #expect(forged.first?["target"] as? String == "(not an id)" && forged.first?["action"] as? String == "abort", "\(forged)")

            // The controller's view: `faultline audit` with the read token.
            let tokenFile = directory + "/bob-token"
            _ = FileManager.default.createFile(atPath: tokenFile, contents: Data(Self.read.utf8), attributes: [.posixPermissions: 0o600])
            let audit = try await SubprocessRunner().run([TestPaths.faultline, "audit", "--agent", agent.url, "--token-file", tokenFile],
                                                         timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(audit.exitCode == 0, "\(audit.standardError)")
            let lines = audit.standardOutput.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
            #expect(lines.first == ["AGENT", "TIME", "TOKEN", "ROLE", "PEER", "ACTION", "TARGET", "RESULT"])
            let unschedule = try #require(lines.first { $0.contains("unschedule") }, "\(audit.standardOutput)")
            #expect(unschedule.contains("alice") && unschedule.contains("operate") && unschedule.contains(schedule), "\(audit.standardOutput)")
            #expect(lines.last?.contains("(not") == true && !audit.standardOutput.contains("\u{1b}"), "the forged path shows as no id, no escape reaches the terminal: \(audit.standardOutput)")
            #expect(audit.standardOutput.contains("403 forbidden"), "\(audit.standardOutput)")
        }
        // The log is the journal's: it outlives the agent.
        let kept = try Journal(directory: directory + "/state").auditEntries(limit: 100)
        #expect(kept.map(\.action) == ["submit", "abort-all", "abort-all", "submit", "abort", "schedule", "unschedule", "abort"])
    }

    @Test("the tokens file is read again when it changes: a token added works, one removed is refused, without a restart; a broken edit or a removed file accepts none of its tokens until fixed")
    func tokensFileReload() async throws {
        let directory = try makeTestDirectory("access")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = directory + "/tokens"
        try writeTokens(tokens, "alice operate \(Self.operate)\nbob read \(Self.read)\n")
        try await withTestAgent(directory: directory, state: directory + "/state", token: nil, extra: ["--tokens-file", tokens]) { agent in
            #expect(try await agent.call(.GET, "/v1/runs", token: Self.read).status == 200)
            let carol = "cr-" + String(repeating: "c", count: 40)
            try writeTokens(tokens, "alice operate \(Self.operate)\ncarol read \(carol)\n")
            #expect(try await agent.call(.GET, "/v1/runs", token: carol).status == 200, "a token added is accepted at once")
            #expect(try await agent.call(.GET, "/v1/runs", token: Self.read).status == 401, "a token removed is refused at once")

            // An edit that meant to revoke carol but has a typo: fail closed, never keep a token meant to go.
            try writeTokens(tokens, "alice admin \(Self.operate)\n")
            #expect(try await agent.call(.GET, "/v1/runs", token: carol).status == 401, "a broken edit accepts none of the file's tokens")
            #expect(agent.output.contains("the tokens file changed and cannot be used, so none of its tokens is accepted until it is fixed: \(tokens):1: role 'admin' of 'alice' is not one of: read, operate"),
                    "\(agent.output)")
            try writeTokens(tokens, "alice operate \(Self.operate)\n")
            #expect(try await agent.call(.GET, "/v1/runs", token: Self.operate).status == 200, "fixed: the file's tokens work again")
            unlink(tokens)
            #expect(try await agent.call(.GET, "/v1/runs", token: Self.operate).status == 401, "the file removed: its tokens are gone too")
            #expect(agent.output.contains("the tokens file '\(tokens)' is gone: none of its tokens is accepted until it is back"), "\(agent.output)")
        }
    }

    @Test("a tokens file open to others, a bad line or a name used twice is refused at start (exit 2, file:line), nothing served")
    func badTokensFiles() async throws {
        let directory = try makeTestDirectory("access")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let tokens = directory + "/tokens"
        let cases: [(String, mode_t, String)] = [
            ("alice operate \(Self.operate)\n", 0o644, "tokens file '\(tokens)' is open to others (mode 644); run 'chmod 600 \(tokens)'"),
            ("alice operate\n", 0o600, "\(tokens):1: expected 'NAME ROLE TOKEN' (3 words), got 2"),
            ("# c\nalice root \(Self.operate)\n", 0o600, "\(tokens):2: role 'root' of 'alice' is not one of: read, operate"),
            ("alice operate \(Self.operate)\nalice read \(Self.read)\n", 0o600, "token name 'alice' is used twice"),
            ("alice operate \(Self.operate)\nbob read \(Self.operate)\n", 0o600, "the token of 'bob' is also another name's token"),
            ("# nothing\n", 0o600, "tokens file '\(tokens)' names no token"),
        ]
        for (text, mode, message) in cases {
            try writeTokens(tokens, text, mode: mode)
            let result = try await SubprocessRunner().run([TestPaths.faultline, "agent", "--listen", "127.0.0.1:0", "--tokens-file", tokens,
                                                           "--state-dir", directory + "/state"], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(result.exitCode == 2, "\(text): \(result.standardError)")
            #expect(result.standardError.contains(message), "\(text): \(result.standardError)")
        }
        // Off loopback, every token of the file needs 32 characters.
        try writeTokens(tokens, "alice operate short-token\n")
        let short = try await SubprocessRunner().run([TestPaths.faultline, "agent", "--listen", "0.0.0.0:0", "--insecure-http", "--tokens-file", tokens,
                                                      "--state-dir", directory + "/state"], timeout: .seconds(30), outputLimit: 1 << 20)
        #expect(short.exitCode == 2)
        #expect(short.standardError.contains("\(tokens):1: the token of 'alice' has 11 characters: use at least 32"), "\(short.standardError)")
    }
}
