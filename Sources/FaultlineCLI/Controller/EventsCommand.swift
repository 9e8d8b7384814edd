import ArgumentParser
import FaultlineAgent
import FaultlineEngine
import Foundation

/// `faultline events ID [--follow]`: a run's event stream.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Print a run's events from the start; with --follow, keep printing until the run ends.",
        discussion: """
            With -o json each event is printed as its JSON object, one a line (the last is the run's status); \
            with several agents each object gets an "agent" key naming the agent it came from.

            Example:
              faultline events 3f9a0c21 --agent http://10.0.0.5:7465 --follow
            """
    )

    @Argument(help: "The run id.")
    var id: String

    @Flag(help: "Keep streaming until the run is over.")
    var follow = false

    /// `-o json`: each event as its JSON line.
    @OptionGroup var output: OutputOrJSONFlag

    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let clients = try controller.clients()
        let several = clients.count > 1
        let json = output.format == .json
        let results = await eachAgent(clients) { [id, follow] client throws(AgentFailure) -> Bool in
            let response = try await client.open(.GET, "/v1/runs/\(id)/events", query: [("follow", follow ? "true" : "false")],
                                                 timeout: .hours(24 * 7))
            var parser = EventStreamParser()
            do {
                for try await buffer in response.body {
                    for message in parser.feed(String(buffer: buffer)) {
                        let line = json ? Self.json(message, agent: several ? client.endpoint.name : nil)
                            : (several ? "\(client.endpoint.name) " : "") + Self.render(message)
                        FileHandle.standardOutput.write(Data((line + "\n").utf8))
                    }
                }
            } catch {
                throw .unreachable("\(client.endpoint.name): the stream broke: \(error)")
            }
            return true
        }
        let failures = results.compactMap { _, result -> AgentFailure? in
            if case .failure(let failure) = result, failure.status != 404 { return failure }
            return nil
        }
        for failure in failures { StandardError.write("faultline: \(failure.message)\n") }
        if !results.contains(where: { (try? $0.1.get()) != nil }) {
            if failures.isEmpty { StandardError.write("faultline: no agent has run '\(id)'\n") }
            throw ExitCode(failures.isEmpty ? 2 : worstExit(failures.map(\.exitCode)))
        }
    }

    /// An event's JSON object as the agent sent it; with `agent`, that agent's name is added as the key "agent".
    static func json(_ message: EventStreamParser.Message, agent: String?) -> String {
        guard let agent, message.data.hasPrefix("{"),
              let name = try? JSONEncoder.api.encode(agent) else { return message.data }
        let rest = message.data.dropFirst().drop { $0 == " " }
        return "{\"agent\":" + String(decoding: name, as: UTF8.self) + (rest.hasPrefix("}") ? "" : ",") + rest
    }

    static func render(_ message: EventStreamParser.Message) -> String {
        switch message.kind {
        case .end, .status:
            let run = try? AgentClient.decoder.decode(RunStatus.self, from: Data(message.data.utf8))
            // With the steady state so far: each probe's results and the SLO's budget.
            let probes = (run?.probes ?? []).map { "\($0.probe) \($0.count) results, \($0.bad) bad, p95 \(Int(($0.p95 * 1000).rounded())) ms" }
                + (run?.slo.map { ["SLO \(Int(($0.budgetUsed * 100).rounded()))% of the budget used"] } ?? [])
            return "-- \(message.kind == .end ? "end" : "now"): \(run?.state.rawValue ?? "?")" + (run?.exitCode.map { " (exit \($0))" } ?? "") + (run?.reason.map { ": \($0)" } ?? "")
                + (probes.isEmpty ? "" : "; " + probes.joined(separator: "; "))
        case .event: break
        }
        guard let event = try? AgentClient.decoder.decode(RunStreamEvent.self, from: Data(message.data.utf8)) else { return message.data }
        let time = ISO8601DateFormatter().string(from: event.ts)
        let subject = event.fault.map { "[\($0)] " } ?? event.probe.map { "(\($0)) " } ?? ""
        return "\(time) \(event.level == .info ? "" : event.level.rawValue.uppercased() + " ")\(subject)\(event.message)"
    }
}

/// Splits a Server-Sent Events byte stream into messages.
struct EventStreamParser {
    struct Message: Equatable {
        var event: String
        var data: String
        var id: String?

        /// What the message is, read once from its SSE `event:` name: one of the run's events, or the stream's
        /// closing status (`end` when the run is over, `status` while it goes on; neither has an `id`).
        enum Kind: Equatable {
            case event(RunEvent.Name)
            case end
            case status
        }

        var kind: Kind {
            switch (event, id) {
            case ("end", nil): .end
            case ("status", nil): .status
            default: .event(RunEvent.Name(rawValue: event) ?? .other)
            }
        }
    }

    var pending = ""

    mutating func feed(_ text: String) -> [Message] {
        pending += text
        var messages: [Message] = []
        while let range = pending.range(of: "\n\n") {
            let block = pending[..<range.lowerBound]
            pending.removeSubrange(..<range.upperBound)
            var message = Message(event: "message", data: "", id: nil)
            var data: [String] = []
            var named = false
            for line in block.split(separator: "\n") where !line.hasPrefix(":") {
                let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
                let value = parts.count > 1 ? String(parts[1].drop { $0 == " " }) : ""
                switch parts[0] {
                case "event":
                    message.event = value
                    named = true
                case "data": data.append(value)
                case "id": message.id = value
                default: break
                }
            }
            // A block of comments only (the agent's keep-alives) carries nothing to show.
            guard named || !data.isEmpty else { continue }
            message.data = data.joined(separator: "\n")
            messages.append(message)
        }
        return messages
    }
}
