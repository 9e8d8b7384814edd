import ArgumentParser
import Dispatch
import FaultlineAgent
import FaultlineCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `faultline submit FILE`: send a scenario to one or more agents, now or scheduled.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Send a scenario to agents: run it now, at a time, after a delay, or on a cron schedule.",
        discussion: """
            Talks to every agent at once and prints one table; unreachable agents are named with the reason \
            and the others go on. With --lease the controller renews the lease while the runs go on and waits \
            for their results; if it dies (or loses the network), each agent reverts when the lease runs out. \
            With --wait (or --lease) the exit code is the worst of the runs' exit codes (SPEC §2).

            A cron schedule gets one id, chosen here, on every agent, so 'faultline unschedule ID' removes it \
            from all of them. The cron expression and time zone are checked here first: a bad one exits 2 and \
            no agent is asked.

            With -o json: {"agents": [{"agent", "url", "run": {"id", "state", ...}} or {"agent", "url", "error"}]}; \
            with --wait or --lease "run" is the run's last status (an "error" beside it says why it is not the \
            final one). With --cron: {"schedule": ID, "agents": [{"agent", "url", "schedule": {...}} or {..., "error"}]}.

            Examples:
              faultline submit scenarios/payment-api-partition.yaml --agent http://10.0.0.5:7465 --lease 15s
              faultline submit game-day.yaml --agents fleet.txt --at 2026-11-28T09:00:00Z
              faultline submit nightly.yaml --cron '0 3 * * 1-5' --time-zone Europe/Berlin
            """
    )

    @Argument(help: "The scenario file.", completion: .file(extensions: ["yaml", "yml", "json"]))
    var file: String

    @Option(help: "Run at this time (RFC 3339, e.g. 2026-11-28T09:00:00Z).")
    var at: String?

    @Option(name: .customLong("in"), help: "Run after this delay (e.g. 10m).")
    var delay: String?

    @Option(help: "Run on this cron schedule: 5 fields or @hourly, @daily, ...")
    var cron: String?

    @Option(help: "The cron schedule's time zone (IANA name; default UTC).")
    var timeZone: String?

    @Option(help: "The controller's lease: agents revert when it is not renewed for this long (e.g. 15s).")
    var lease: String?

    @Flag(help: "Wait for the runs to end and exit with the worst of their exit codes.")
    var wait = false

    @Option(help: "With --wait: write each run's report.json, report.md and report.html into this directory (in DIR/AGENT/ with several agents).", completion: .directory)
    var report: String?

    @Option(help: "With --wait: write a JUnit XML file, one test suite per agent's run.", completion: .file())
    var junit: String?

    /// `-o json`: one entry per agent with its run or schedule (or its error), for scripts.
    @OptionGroup var output: OutputOptions

    @OptionGroup var controller: ControllerOptions

    func validate() throws {
        if [at, delay, cron].compactMap({ $0 }).count > 1 { throw ValidationError("use only one of --at, --in and --cron") }
        if timeZone != nil && cron == nil { throw ValidationError("--time-zone goes with --cron") }
        if lease != nil && cron != nil {
            throw ValidationError("--lease needs a controller that stays to renew it; cron runs start when no controller waits")
        }
        if let lease, (try? TimeSpan(parsing: lease)) == nil { throw ValidationError("--lease '\(lease)' is not a duration like 15s") }
        if let cron { try Self.checkSchedule(cron: cron, timeZone: timeZone) }
        if (report != nil || junit != nil) && !wait && lease == nil { throw ValidationError("--report and --junit need --wait: they are written when the runs end") }
    }

    /// Checks a cron expression and its time zone as the agents will, so that a bad one reaches none of them.
    static func checkSchedule(cron: String, timeZone: String?) throws(ValidationError) {
        let expression: CronExpression
        do { expression = try CronExpression(cron) } catch { throw ValidationError(error.message) }
        let zoneName = timeZone ?? "UTC"
        guard let zone = TimeZone(identifier: zoneName) else {
            throw ValidationError("--time-zone '\(zoneName)' is unknown: use an IANA name such as Europe/Berlin or UTC")
        }
        if expression.next(after: Date(), in: zone) == nil {
            throw ValidationError("cron '\(expression)' never fires in the next 5 years")
        }
    }

    func run() async throws {
        let text = ScenarioFile.contents(file) ?? ""
        _ = try ScenarioFile.loadOrExit(file)  // every error with its position, before any agent sees it
        let clients = try controller.clients()
        if let cron {
            try await schedule(text, cron: cron, clients: clients)
            return
        }
        var parameters: [(String, String)] = []
        if let lease { parameters.append(("lease", lease)) }
        if let time = try scheduledTime() { parameters.append(("at", ISO8601DateFormatter().string(from: time))) }
        let query = parameters
        let results = await eachAgent(clients) { client throws(AgentFailure) in
            try await client.get(SubmitResponse.self, "/v1/runs", method: .POST, query: query, body: Data(text.utf8),
                                 headers: [("Content-Type", "application/yaml"), ("X-Faultline-Source", file)])
        }
        let json = output.format == .json
        if !json {
            print(table(["AGENT", "RUN", "STATE", "NOTE"], results.map { client, result in
                switch result {
                case .success(let created): [client.endpoint.name, created.id, created.state.rawValue,
                                             created.scheduledAt.map { "at " + ISO8601DateFormatter().string(from: $0) } ?? ""]
                case .failure(let failure): [client.endpoint.name, "-", failure.isNoPodsHere ? "no pods here" : "refused", failure.description]
                }
            }), terminator: "")
        }
        let submitted: [(AgentClient, String)] = results.compactMap { client, result in (try? result.get()).map { (client, $0.id) } }
        // An agent whose node runs none of the scenario's pods has nothing to do: fine while another agent took the
        // run; when none did, the pods are nowhere (exit 3).
        let failures: [AgentFailure] = results.compactMap { $0.1.failure }.filter { !$0.isNoPodsHere || submitted.isEmpty }
        if submitted.isEmpty, failures.contains(where: \.isNoPodsHere) {
            StandardError.write("faultline: no agent runs the scenario's pods: nothing was applied anywhere\n")
        }
        guard wait || lease != nil, !submitted.isEmpty else {
            if json { try printJSON(AgentEntries(agents: results.map { AgentEntry($0, "run", $1.map(SubmittedRun.accepted)) })) }
            if !failures.isEmpty { throw ExitCode(worstExit(failures.map(\.exitCode))) }
            return
        }
        let waiter = RunWaiter(runs: submitted, lease: try lease.map { try TimeSpan(parsing: $0) })
        let (outcomes, interrupted) = await waiter.wait()
        // The reports of the runs that ended, as `faultline run --report DIR --junit FILE` writes its own.
        var reportCodes: [Int32] = []
        if report != nil || junit != nil {
            let ended = zip(submitted, outcomes).compactMap { run, outcome -> (agent: String, client: AgentClient, id: String)? in
                outcome.status?.state.isFinal == true ? (run.0.endpoint.name, run.0, run.1) : nil
            }
            for problem in await ReportFetch.write(ended, reportDirectory: report, junit: junit) {
                StandardError.write("faultline: \(problem)\n")
                reportCodes = [3]
            }
        }
        if json {
            var waited = outcomes.makeIterator()
            try printJSON(AgentEntries(agents: results.map { client, result -> AgentEntry<SubmittedRun> in
                guard case .success(let created) = result, let outcome = waited.next() else { return AgentEntry(client, "run", result.map(SubmittedRun.accepted)) }
                return AgentEntry(client, "run", value: outcome.status.map(SubmittedRun.status) ?? .accepted(created), failure: outcome.failure)
            }))
        }
        throw ExitCode(worstExit(outcomes.map(\.exitCode) + (interrupted ? [130] : []) + failures.map(\.exitCode) + reportCodes))
    }

    /// The time of `--at` or `--in`, if given.
    func scheduledTime() throws -> Date? {
        if let at {
            guard let time = APIDate.parse(at) else {
                StandardError.write("faultline: --at '\(at)' is not an RFC 3339 time such as 2026-11-28T09:00:00Z\n")
                throw ExitStatus.invalid
            }
            return time
        }
        if let delay {
            guard let span = try? TimeSpan(parsing: delay), span.microseconds > 0 else {
                StandardError.write("faultline: --in '\(delay)' is not a duration like 10m\n")
                throw ExitStatus.invalid
            }
            return Date().addingTimeInterval(span.seconds)
        }
        return nil
    }

    /// Sends a cron schedule to every agent under one id chosen here.
    func schedule(_ text: String, cron: String, clients: [AgentClient]) async throws {
        let id = ScheduleID.random()
        let request = ScheduleRequest(scenario: text, cron: cron, timeZone: timeZone, lease: nil, id: id)
        let body = try JSONEncoder().encode(request)
        let results = await eachAgent(clients) { client throws(AgentFailure) in
            try await client.get(ScheduleStatus.self, "/v1/schedules", method: .POST, body: body,
                                 headers: [("Content-Type", "application/json"), ("X-Faultline-Source", file)])
        }
        if output.format == .json {
            try printJSON(FleetSchedule(schedule: id, agents: results.map { AgentEntry($0, "schedule", $1) }))
        } else {
            print(table(["AGENT", "SCHEDULE", "CRON", "NEXT"], results.map { client, result in
                switch result {
                case .success(let schedule): [client.endpoint.name, schedule.id, "\(schedule.cron ?? "") \(schedule.timeZone)",
                                              schedule.nextAt.map { ISO8601DateFormatter().string(from: $0) } ?? "-"]
                case .failure(let failure): [client.endpoint.name, "-", "refused", failure.description]
                }
            }), terminator: "")
        }
        let failures: [AgentFailure] = results.compactMap { $0.1.failure }
        if !failures.isEmpty { throw ExitCode(worstExit(failures.map(\.exitCode))) }
    }
}

/// A run in `submit -o json`: the agent's answer to the submit, or (with --wait) the run's last status.
enum SubmittedRun: Encodable {
    case accepted(SubmitResponse)
    case status(RunStatus)

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .accepted(let answer): try answer.encode(to: encoder)
        case .status(let status): try status.encode(to: encoder)
        }
    }
}

/// `submit --cron -o json`: the schedule's one id, and what each agent made of it.
struct FleetSchedule: Encodable {
    var schedule: String
    var agents: [AgentEntry<ScheduleStatus>]
}

extension Result {
    /// The error, or nil on success.
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

/// Waits for runs on several agents to end, renewing their leases, and aborts them on Ctrl-C.
struct RunWaiter {
    let runs: [(AgentClient, String)]
    let lease: TimeSpan?

    /// How one run ended, as far as the controller saw.
    struct Outcome: Sendable {
        /// The run's exit code; 3 when its agent stopped answering.
        var exitCode: Int32
        /// The last status the agent sent.
        var status: RunStatus?
        /// Why `status` is not the final one (the agent stopped answering).
        var failure: AgentFailure?
    }

    /// Each run's outcome, in the order of `runs`, and whether the controller was interrupted.
    func wait() async -> (outcomes: [Outcome], interrupted: Bool) {
        let stop = InterruptFlag()
        defer { stop.cancel() }
        let outcomes = await withTaskGroup(of: (Int, Outcome).self) { group in
            for (index, (client, id)) in runs.enumerated() {
                group.addTask { (index, await follow(client, id, interrupted: stop)) }
            }
            var outcomes: [(Int, Outcome)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }.map(\.1)
        }
        return (outcomes, stop.fired)
    }

    func follow(_ client: AgentClient, _ id: String, interrupted: InterruptFlag) async -> Outcome {
        let name = client.endpoint.name
        var lastState = ""
        var lastRenewal = ContinuousClock.now
        var lastContact = ContinuousClock.now
        var abortSent = false
        var last: RunStatus?
        let renewEvery = Duration.milliseconds(max(250, Int64((lease?.seconds ?? 3) * 1000 / 3)))
        while true {
            // Interrupted: the abort is sent until the agent takes it, and the lease is no longer renewed, so that
            // if the agent cannot be reached the lease still ends the run.
            if interrupted.fired && !abortSent {
                abortSent = (try? await client.send(.POST, "/v1/runs/\(id)/abort")) != nil
            }
            if lease != nil && !interrupted.fired && ContinuousClock.now - lastRenewal >= renewEvery {
                if (try? await client.send(.POST, "/v1/runs/\(id)/lease")) != nil { lastRenewal = .now }
            }
            do throws(AgentFailure) {
                let status = try await client.get(RunStatus.self, "/v1/runs/\(id)")
                lastContact = .now
                last = status
                if status.state.rawValue != lastState {
                    lastState = status.state.rawValue
                    let faults = status.faults.map { "\($0.name) \($0.state.rawValue)" }.joined(separator: ", ")
                    StandardError.write("\(name) \(id): \(lastState)\(faults.isEmpty ? "" : " (\(faults))")\(status.reason.map { ": \($0)" } ?? "")\n")
                }
                if status.state.isFinal {
                    return Outcome(exitCode: status.exitCode ?? (status.state == .succeeded ? 0 : 1), status: status)
                }
            } catch {
                if ContinuousClock.now - lastContact > .seconds(max(10, Int64(lease?.seconds ?? 10))) {
                    StandardError.write("\(name) \(id): lost contact: \(error.message)\n")
                    return Outcome(exitCode: 3, status: last, failure: .unreachable("\(name) \(id): lost contact: \(error.message)"))
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }
}

/// Notes Ctrl-C (and SIGTERM, SIGHUP of a dropped SSH session, SIGQUIT) instead of dying, so the controller can abort
/// what it started.
final class InterruptFlag: Sendable {
    private let source: SignalSources

    /// Owns the dispatch sources; `@unchecked` because they are only touched at init and cancel.
    final class SignalSources: @unchecked Sendable {
        var sources: [any DispatchSourceSignal] = []
        let flag = Mutex(false)
    }

    init() {
        source = SignalSources()
        for number in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
            signal(number, SIG_IGN)
            let signalSource = DispatchSource.makeSignalSource(signal: number, queue: .global())
            signalSource.setEventHandler { [source] in
                source.flag.withLock { $0 = true }
                StandardError.write("faultline: interrupted: aborting the runs on the agents, then waiting for their reverts\n")
            }
            signalSource.resume()
            source.sources.append(signalSource)
        }
    }

    var fired: Bool { source.flag.withLock { $0 } }

    func cancel() { source.sources.forEach { $0.cancel() } }
}
