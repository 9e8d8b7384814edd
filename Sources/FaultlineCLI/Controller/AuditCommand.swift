import ArgumentParser
import FaultlineAgent
import FaultlineJournal
import Foundation

/// `faultline audit`: who changed what on every agent, from their audit logs (`GET /v1/audit`).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Show the audit log of every agent: each submit, abort, lease, schedule and unschedule, refused ones too.",
        discussion: """
            Each entry has the time, the token's name and role, the client's address, the action, the run or \\
            schedule, and the answer. Needs a token of role read or operate. A 'recover --forget' on an agent's \\
            host is in its log too (token local:USER).

            With -o json: {"agents": [{"agent", "url", "entries": [...]} or {"agent", "url", "error"}]}.

            Example:
              faultline audit --agent https://10.0.0.5:7465 --ca-file ca.pem --limit 20
            """
    )

    @Option(help: "How many of the newest entries per agent (1 to 1000).")
    var limit = 50

    /// `-o json`: one entry per agent with its entries (or its error), for scripts.
    @OptionGroup var output: OutputOrJSONFlag

    @OptionGroup var controller: ControllerOptions

    func validate() throws {
        guard (1...1_000).contains(limit) else { throw ValidationError("--limit must be from 1 to 1000") }
    }

    struct AuditList: Codable { var entries: [AuditEntry] }

    func run() async throws {
        let results = await eachAgent(try controller.clients()) { [limit] client throws(AgentFailure) in
            try await client.get(AuditList.self, "/v1/audit", query: [("limit", String(limit))]).entries
        }
        let failures: [AgentFailure] = results.compactMap { $0.1.failure }
        if output.format == .json {
            try printJSON(AgentEntries(agents: results.map { AgentEntry($0, "entries", $1) }))
        } else {
            var rows: [[String]] = []
            for (client, result) in results {
                switch result {
                case .success(let entries):
                    rows += entries.map { entry in
                        [client.endpoint.name, APIDate.format(entry.time), entry.token, entry.role ?? "-", entry.peer, entry.action,
                         entry.target ?? "-", entry.status == 0 ? entry.result : "\(entry.status) \(entry.result)"]
                    }
                case .failure(let failure):
                    rows.append([client.endpoint.name, "-", "-", "-", "-", "-", "-", "\(failure.label): \(failure.message)"])
                }
            }
            print(table(["AGENT", "TIME", "TOKEN", "ROLE", "PEER", "ACTION", "TARGET", "RESULT"], rows), terminator: "")
        }
        if !failures.isEmpty { throw ExitCode(worstExit(failures.map(\.exitCode))) }
    }
}
