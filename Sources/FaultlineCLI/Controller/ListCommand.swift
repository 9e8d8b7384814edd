import ArgumentParser
import FaultlineAgent
import Foundation

/// `faultline list`: the runs of every agent, newest first, a page at a time.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the runs of every agent, newest first, in one table.",
        discussion: """
            Each agent answers a page at a time (GET /v1/runs?limit=&after=); list follows the pages until it has \
            --limit runs of each agent, or all of them with --all. An agent keeps its finished runs as long as its \
            --keep-runs and --keep-for allow.

            Examples:
              faultline list --agent http://10.0.0.5:7465 --agent http://10.0.0.6:7465
              faultline list --state failed,aborted --scenario checkout-db-latency
              faultline list --all -o json

            With -o json: {"agents": [{"agent", "url", "runs": [...]} or {"agent", "url", "error"}]}.
            """
    )

    @Option(help: ArgumentHelp("Only runs in these states (comma-separated): scheduled, running, reverting, succeeded, deviated, aborted, failed, inconclusive; or active, finished.",
                               valueName: "states"))
    var state: String?

    @Option(help: ArgumentHelp("Only runs of this scenario (its metadata.name).", valueName: "name"))
    var scenario: String?

    @Option(help: "At most this many runs of each agent, the newest.")
    var limit: Int = 50

    @Flag(help: "Every run each agent keeps (follows every page).")
    var all = false

    /// `-o json`: one entry per agent with its runs (or its error), for scripts.
    @OptionGroup var output: OutputOrJSONFlag

    @OptionGroup var controller: ControllerOptions

    func validate() throws {
        guard limit >= 1 else { throw ValidationError("--limit must be at least 1, got \(limit)") }
        if let scenario, scenario.isEmpty { throw ValidationError("--scenario is empty") }
    }

    func run() async throws {
        let query = (state.map { [("state", $0)] } ?? []) + (scenario.map { [("scenario", $0)] } ?? [])
        let most = all ? Int.max : limit
        let results = await eachAgent(try controller.clients()) { client throws(AgentFailure) in
            try await client.runs(query, most: most)
        }
        if output.format == .json {
            try printJSON(AgentEntries(agents: results.map { AgentEntry($0, "runs", $1) }))
            let failures: [AgentFailure] = results.compactMap { $0.1.failure }
            if !failures.isEmpty { throw ExitCode(worstExit(failures.map(\.exitCode))) }
            return
        }
        var rows: [[String]] = []
        var failures: [AgentFailure] = []
        for (client, result) in results {
            switch result {
            case .success(let runs): rows += runs.map { RunRow.cells(client.endpoint.name, $0) }
            case .failure(let failure):
                failures.append(failure)
                rows.append([client.endpoint.name, "-", "-", failure.label, "-", "-", failure.message])
            }
        }
        print(table(RunRow.header, rows), terminator: "")
        if !failures.isEmpty { throw ExitCode(worstExit(failures.map(\.exitCode))) }
    }
}

/// A page of `GET /v1/runs`: `{"runs": [...], "next": CURSOR}`.
struct RunList: Decodable {
    var runs: [RunStatus]
    var next: String?
}

extension AgentClient {
    /// The agent's runs matching `query`, newest first, following `next` until `most` runs or the last page.
    func runs(_ query: [(String, String)], most: Int) async throws(AgentFailure) -> [RunStatus] {
        var runs: [RunStatus] = []
        var after: String?
        repeat {
            let page = min(RunQuery.maximumLimit, most - runs.count)
            let list = try await get(RunList.self, "/v1/runs", query: query + [("limit", String(page))] + (after.map { [("after", $0)] } ?? []))
            runs += list.runs
            after = list.next
        } while after != nil && runs.count < most
        return runs
    }
}

/// How a run shows in a table.
enum RunRow {
    static let header = ["AGENT", "RUN", "SCENARIO", "STATE", "STARTED", "EXIT", "NOTE"]

    static func cells(_ agent: String, _ run: RunStatus) -> [String] {
        let started = (run.startedAt ?? run.scheduledAt).map { ISO8601DateFormatter().string(from: $0) } ?? "-"
        let active = run.faults.filter { $0.state == .active }.map(\.name)
        let note = run.reason ?? (active.isEmpty ? "" : "active: " + active.joined(separator: ", "))
        return [agent, run.id, run.scenario, run.state.rawValue, started, run.exitCode.map(String.init) ?? "-", note]
    }
}
