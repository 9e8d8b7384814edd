import ArgumentParser
import FaultlineAgent
import Foundation

/// `faultline schedules`: the schedules of every agent.
struct SchedulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedules",
        abstract: "List the schedules of every agent: cron and one-shot, their next time, and times missed while an agent was down.",
        discussion: """
            With -o json: {"agents": [{"agent", "url", "schedules": [...]} or {"agent", "url", "error"}]}.

            Example:
              faultline schedules --agents fleet.txt
            """
    )

    /// `-o json`: one entry per agent with its schedules (or its error), for scripts.
    @OptionGroup var output: OutputOptions

    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let results = await eachAgent(try controller.clients()) { client throws(AgentFailure) in
            try await client.get(ScheduleList.self, "/v1/schedules").schedules
        }
        if output.format == .json {
            try printJSON(AgentEntries(agents: results.map { AgentEntry($0, "schedules", $1) }))
            let failures: [AgentFailure] = results.compactMap { $0.1.failure }
            if !failures.isEmpty { throw ExitCode(worstExit(failures.map(\.exitCode))) }
            return
        }
        let format = ISO8601DateFormatter()
        var rows: [[String]] = []
        var codes: [Int32] = []
        for (client, result) in results {
            switch result {
            case .success(let schedules):
                rows += schedules.map { schedule in
                    let when = schedule.cron.map { "\($0) (\(schedule.timeZone))" } ?? schedule.at.map { "at " + format.string(from: $0) } ?? "-"
                    var notes: [String] = []
                    if let last = schedule.missed.last { notes.append("missed \(schedule.missed.count), last \(format.string(from: last))") }
                    if let skipped = schedule.lastSkipReason { notes.append("last time: " + skipped) }
                    return [client.endpoint.name, schedule.id, schedule.scenario, when, schedule.nextAt.map { format.string(from: $0) } ?? "-",
                            schedule.state, schedule.lastRunID ?? "-", notes.joined(separator: "; ")]
                }
            case .failure(let failure):
                codes.append(failure.exitCode)
                rows.append([client.endpoint.name, "-", "-", failure.label, "-", "-", "-", failure.message])
            }
        }
        print(table(["AGENT", "SCHEDULE", "SCENARIO", "WHEN", "NEXT", "STATE", "LAST RUN", "NOTE"], rows), terminator: "")
        if !codes.isEmpty { throw ExitCode(worstExit(codes)) }
    }
}

/// `{"schedules": [...]}` of `GET /v1/schedules`.
struct ScheduleList: Decodable { var schedules: [ScheduleStatus] }

/// `faultline unschedule ID`: remove a schedule from every agent given.
struct UnscheduleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unschedule",
        abstract: "Remove a schedule (cron, or a one-shot run not started yet) from every agent given.",
        discussion: """
            A cron schedule made by 'faultline submit --cron' has the same id on every agent it was sent to, so one \
            command removes it from the whole fleet. Agents that do not have it are named; exits 2 when none has it.
            With -o json: {"agents": [{"agent", "url", "removed": true|false} or {"agent", "url", "error"}]}.

            Example:
              faultline unschedule s1a2b3c4d --agents fleet.txt
            """
    )

    @Argument(help: "The schedule id (a one-shot run's schedule id is its run id).")
    var id: String

    /// `-o json`: one entry per agent, whether it removed the schedule (or its error).
    @OptionGroup var output: OutputOptions

    @OptionGroup var controller: ControllerOptions

    func run() async throws {
        let results = await eachAgent(try controller.clients()) { [id] client throws(AgentFailure) -> Bool in
            do throws(AgentFailure) {
                _ = try await client.send(.DELETE, "/v1/schedules/\(id)")
                return true
            } catch where error.status == 404 {
                return false
            }
        }
        let failures: [AgentFailure] = results.compactMap { $0.1.failure }
        let removed = results.filter { (try? $0.1.get()) == true }.count
        if output.format == .json {
            try printJSON(AgentEntries(agents: results.map { AgentEntry($0, "removed", $1) }))
        } else {
            for (client, result) in results {
                switch result {
                case .success(true): print("\(client.endpoint.name): removed \(id)")
                case .success(false): print("\(client.endpoint.name): has no schedule \(id)")
                case .failure(let failure): StandardError.write("faultline: \(failure.message)\n")
                }
            }
        }
        if removed == 0 && failures.isEmpty {
            StandardError.write("faultline: no agent has schedule '\(id)'\n")
            throw ExitStatus.invalid
        }
        if !failures.isEmpty { throw ExitCode(worstExit(failures.map(\.exitCode))) }
    }
}
