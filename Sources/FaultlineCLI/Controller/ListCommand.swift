import ArgumentParser
import FaultlineAgent
import Foundation

/// `faultline list`: every run on every agent.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the runs of every agent, oldest first, in one table.",
        discussion: """
            Examples:
              faultline list --agent http://10.0.0.5:7465 --agent http://10.0.0.6:7465
              faultline list -o json

            With -o json: {"agents": [{"agent", "url", "runs": [...]} or {"agent", "url", "error"}]}.
            """
    )

    /// `-o json`: one entry per agent with its runs (or its error), for scripts.
    @OptionGroup var output: OutputOrJSONFlag

    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let results = await eachAgent(try controller.clients()) { client throws(AgentFailure) in
            try await client.get(RunList.self, "/v1/runs").runs
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

/// `{"runs": [...]}` of `GET /v1/runs`.
struct RunList: Decodable { var runs: [RunStatus] }

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
