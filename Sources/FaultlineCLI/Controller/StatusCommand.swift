import ArgumentParser
import FaultlineAgent
import FaultlineCore
import Foundation

/// `faultline status [ID] [--watch]`: a run's state and its faults, or the active runs of every agent.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a run (its faults, lease, verdict) or, without ID, the active runs of every agent.",
        discussion: """
            With --watch it redraws every second; with an ID it stops when the run is over and exits \
            with the run's exit code (SPEC §2).

            With -o json (one line per redraw with --watch): {"agents": [...]}, one entry per agent with "run" \
            (with an ID; an agent that does not have the run has neither "run" nor "error"), or "runs", its \
            active runs (without), or "error".

            Examples:
              faultline status 3f9a0c21 --agent http://10.0.0.5:7465 --watch
              faultline status --agents fleet.txt
            """
    )

    @Argument(help: "The run id; omit it for every active run.")
    var id: String?

    @Flag(help: "Redraw every second until the run is over (or until Ctrl-C without an ID).")
    var watch = false

    /// `-o json`: one entry per agent with its run or runs (or its error), for scripts.
    @OptionGroup var output: OutputOptions

    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let clients = try controller.clients()
        let json = output.format == .json
        while true {
            let (text, exit, over) = try await snapshot(clients, json: json)
            if watch && !json && isatty(1) == 1 { print("\u{1B}[H\u{1B}[2J", terminator: "") }
            print(text, terminator: "")
            if !watch || over {
                if exit != 0 { throw ExitCode(exit) }
                return
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// The text (or JSON) to show, the exit code so far, and whether there is nothing left to watch.
    func snapshot(_ clients: [AgentClient], json: Bool) async throws -> (String, Int32, Bool) {
        if let id {
            let results = await eachAgent(clients) { client throws(AgentFailure) in try await client.get(RunStatus.self, "/v1/runs/\(id)") }
            var text = ""
            var codes: [Int32] = []
            var found = false
            var over = true
            for (client, result) in results {
                switch result {
                case .success(let run):
                    found = true
                    over = over && run.state.isFinal
                    if let code = run.exitCode { codes.append(code) }
                    text += Self.detail(client.endpoint.name, run)
                case .failure(let failure) where failure.status == 404: continue
                case .failure(let failure):
                    codes.append(failure.exitCode)
                    text += "\(client.endpoint.name): \(failure.message)\n"
                }
            }
            if json {
                let entries = results.map { client, result in
                    result.failure?.status == 404 ? AgentEntry<RunStatus>(client, "run", value: nil) : AgentEntry(client, "run", result)
                }
                text = try jsonLine(AgentEntries(agents: entries))
                if !found { StandardError.write("faultline: no agent has run '\(id)'\n") }
            } else if !found {
                text += "no agent has run '\(id)'\n"
            }
            return found ? (text, worstExit(codes), over) : (text, 2, true)
        }
        let results = await eachAgent(clients) { client throws(AgentFailure) in try await client.runs([("state", "active")], most: .max) }
        var rows: [[String]] = []
        var codes: [Int32] = []
        for (client, result) in results {
            switch result {
            case .success(let runs): rows += runs.filter { !$0.state.isFinal }.map { RunRow.cells(client.endpoint.name, $0) }
            case .failure(let failure):
                codes.append(failure.exitCode)
                rows.append([client.endpoint.name, "-", "-", failure.label, "-", "-", failure.message])
            }
        }
        if json {
            let entries = results.map { client, result in AgentEntry(client, "runs", result.map { $0.filter { !$0.state.isFinal } }) }
            return (try jsonLine(AgentEntries(agents: entries)), worstExit(codes), false)
        }
        return (table(RunRow.header, rows), worstExit(codes), false)
    }

    static func detail(_ agent: String, _ run: RunStatus) -> String {
        let format = ISO8601DateFormatter()
        var lines = ["\(agent)  run \(run.id)  \(run.scenario)  \(run.state.rawValue)" + (run.exitCode.map { "  exit \($0)" } ?? "")]
        if let reason = run.reason { lines.append("  reason: \(reason)") }
        if let lease = run.leaseExpiresAt { lines.append("  lease until \(format.string(from: lease))") }
        let rows = run.faults.map { fault in
            ["  " + fault.name, fault.type, fault.target, fault.state.rawValue,
             fault.injectedAt.map { format.string(from: $0) } ?? "-", fault.revertedAt.map { format.string(from: $0) } ?? "-",
             fault.evidence.map { $0.hits > 0 ? $0.amount : "nothing" } ?? "-", fault.error ?? ""]
        }
        var text = lines.joined(separator: "\n") + "\n" + table(["  FAULT", "TYPE", "TARGET", "STATE", "INJECTED", "REVERTED", "ACTED ON", "ERROR"], rows)
        if let probes = run.probes, !probes.isEmpty {
            let milliseconds = { (seconds: Double) in String(format: "%.1f ms", seconds * 1000) }
            text += table(["  PROBE", "RESULTS", "GOOD", "BAD", "LATEST", "P95", "LAST"], probes.map { probe in
                ["  " + probe.probe, String(probe.count), String(probe.good), String(probe.bad), milliseconds(probe.latestLatency),
                 milliseconds(probe.p95), probe.latestOK ? "ok" : String(probe.latestDetail.prefix(60))]
            })
        }
        if let slo = run.slo {
            text += "  SLO \(TimeSpan.trim(slo.objective))%: \(slo.good) of \(slo.total) good, \(Int((slo.budgetUsed * 100).rounded()))% of the error budget used"
                + (slo.burnRate.map { String(format: ", burn rate %.1f× over the last %@", $0, TimeSpan.trim(slo.window) + "s") } ?? "") + "\n"
        }
        return text
    }
}
