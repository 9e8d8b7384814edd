import ArgumentParser
import FaultlineAgent
import Foundation

/// `faultline abort ID` · `faultline abort --all`: stop and revert on the agents.
struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abort",
        abstract: "Abort a run, or with --all every run on every agent (the big red button), and wait for the reverts.",
        discussion: """
            Scheduled one-shot runs are cancelled too; cron schedules stay (see 'faultline unschedule'). \
            Exits 0 when everything aborted is reverted, 4 when a revert failed, 3 when an agent did not answer.

            Examples:
              faultline abort 3f9a0c21 --agent http://10.0.0.5:7465
              faultline abort --all --agents fleet.txt
            """
    )

    @Argument(help: "The run id.")
    var id: String?

    @Flag(help: "Abort every run on every agent.")
    var all = false

    @Flag(help: "Return once the agents have the request; do not wait for the reverts.")
    var noWait = false

    @OptionGroup var controller: ControllerOptions

    func validate() throws {
        if (id == nil) == !all { throw ValidationError("give a run ID or --all") }
    }

    func run() async throws {
        let clients = try controller.clients()
        let results: [(AgentClient, Result<[RunStatus], AgentFailure>)]
        if let id {
            results = await eachAgent(clients) { client throws(AgentFailure) in
                do throws(AgentFailure) {
                    return [try await client.get(RunStatus.self, "/v1/runs/\(id)/abort", method: .POST)]
                } catch where error.status == 404 {
                    return []
                }
            }
        } else {
            results = await eachAgent(clients) { client throws(AgentFailure) in
                try await client.get(AbortAllAnswer.self, "/v1/abort", method: .POST).aborted
            }
        }
        var codes: [Int32] = []
        var pending: [(AgentClient, String)] = []
        for (client, result) in results {
            switch result {
            case .success(let runs): pending += runs.map { (client, $0.id) }
            case .failure(let failure):
                codes.append(failure.exitCode)
                StandardError.write("faultline: \(failure.message)\n")
            }
        }
        if let id, pending.isEmpty, codes.isEmpty {
            StandardError.write("faultline: no agent has run '\(id)'\n")
            throw ExitStatus.invalid
        }
        var rows: [[String]] = []
        if noWait {
            rows = pending.map { [$0.0.endpoint.name, $0.1, "aborting"] }
        } else {
            let finals = await eachRun(pending)
            for (client, id, status) in finals {
                rows.append([client.endpoint.name, id, status?.state.rawValue ?? "unknown", status?.reason ?? "no answer"])
                if let status, status.exitCode == 4 { codes.append(4) } else if status == nil { codes.append(3) }
            }
        }
        print(table(["AGENT", "RUN", "STATE", "NOTE"], rows), terminator: "")
        let exit = worstExit(codes)
        if exit != 0 { throw ExitCode(exit) }
    }

    /// Waits (up to a minute) for each aborted run to be over.
    func eachRun(_ runs: [(AgentClient, String)]) async -> [(AgentClient, String, RunStatus?)] {
        await withTaskGroup(of: (Int, RunStatus?).self) { group in
            for (index, (client, id)) in runs.enumerated() {
                group.addTask {
                    let deadline = ContinuousClock.now + .seconds(60)
                    var last: RunStatus?
                    while ContinuousClock.now < deadline {
                        if let status = try? await client.get(RunStatus.self, "/v1/runs/\(id)") {
                            last = status
                            if status.state.isFinal { return (index, status) }
                        }
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    return (index, last)
                }
            }
            var results: [(Int, RunStatus?)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map { (runs[$0.0].0, runs[$0.0].1, $0.1) }
        }
    }
}

/// `{"aborted": [...]}` of `POST /v1/abort`.
struct AbortAllAnswer: Decodable { var aborted: [RunStatus] }
