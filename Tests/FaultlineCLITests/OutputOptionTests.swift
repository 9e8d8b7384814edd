import ArgumentParser
@testable import FaultlineAgent
@testable import FaultlineCLI
import FaultlineCore
import Foundation
import Testing

/// `-o text|json` on every command that prints data, the older spellings it replaces, the JSON shapes' pieces, and
/// the local check of a cron schedule: parsing only, no agent, no root.
struct OutputOptionTests {
    /// The command a command line parses to, as `T`.
    func parse<T: ParsableCommand>(_ arguments: [String], as type: T.Type) throws -> T {
        let command = try Faultline.parseAsRoot(arguments)
        return try #require(command as? T, "\(arguments) parsed to \(Swift.type(of: command))")
    }

    /// The message a refused command line gets.
    func refusal(_ arguments: [String]) -> String? {
        do {
            _ = try Faultline.parseAsRoot(arguments)
            return nil
        } catch {
            return Faultline.message(for: error)
        }
    }

    @Test("-o json, --output json and -o text parse on every command that prints data; text is the default")
    func everyCommand() throws {
        #expect(try parse(["list", "-o", "json"], as: ListCommand.self).output.format == .json)
        #expect(try parse(["list", "--output", "json"], as: ListCommand.self).output.format == .json)
        #expect(try parse(["list", "--output=json"], as: ListCommand.self).output.format == .json)
        #expect(try parse(["list"], as: ListCommand.self).output.format == .text)
        #expect(try parse(["audit", "-o", "json", "--limit", "5"], as: AuditCommand.self).output.format == .json)
        #expect(try parse(["events", "3f9a0c21", "-o", "json"], as: EventsCommand.self).output.format == .json)
        #expect(try parse(["status", "-o", "json"], as: StatusCommand.self).output.format == .json)
        #expect(try parse(["status", "3f9a0c21", "--watch", "-o", "json"], as: StatusCommand.self).output.format == .json)
        #expect(try parse(["schedules", "-o", "json"], as: SchedulesCommand.self).output.format == .json)
        #expect(try parse(["unschedule", "s4c2e9a10", "-o", "json"], as: UnscheduleCommand.self).output.format == .json)
        #expect(try parse(["submit", "x.yaml", "-o", "json", "--wait"], as: SubmitCommand.self).output.format == .json)
        #expect(try parse(["submit", "x.yaml"], as: SubmitCommand.self).output.format == .text)
        #expect(try parse(["plan", "x.yaml", "-o", "json"], as: PlanCommand.self).output.format == .json)
        #expect(try parse(["doctor", "-o", "json"], as: DoctorCommand.self).output.format == .json)
        #expect(try parse(["doctor"], as: DoctorCommand.self).output.format == .text)
        #expect(try parse(["validate", "x.yaml", "-o", "json"], as: ValidateCommand.self).output.format == .json)
        #expect(try parse(["validate", "-o", "text", "x.yaml"], as: ValidateCommand.self).output.format == .text)
        // Global options before the command move behind it; -o stays with the command.
        #expect(try parse(Faultline.movingGlobalOptions(["--agent", "http://10.0.0.5:7465", "list", "-o", "json"]), as: ListCommand.self)
            .output.format == .json)
    }

    @Test("the older spellings still work: --json (list, audit, events) and --format text|json (plan, doctor)")
    func olderSpellings() throws {
        #expect(try parse(["list", "--json"], as: ListCommand.self).output.format == .json)
        #expect(try parse(["audit", "--json"], as: AuditCommand.self).output.format == .json)
        #expect(try parse(["events", "3f9a0c21", "--json", "--follow"], as: EventsCommand.self).output.format == .json)
        #expect(try parse(["plan", "x.yaml", "--format", "json"], as: PlanCommand.self).output.format == .json)
        #expect(try parse(["plan", "x.yaml", "--format", "text"], as: PlanCommand.self).output.format == .text)
        #expect(try parse(["doctor", "--format", "json"], as: DoctorCommand.self).output.format == .json)
        // Both spellings that agree are fine.
        #expect(try parse(["list", "--json", "-o", "json"], as: ListCommand.self).output.format == .json)
        #expect(try parse(["plan", "x.yaml", "--format", "json", "-o", "json"], as: PlanCommand.self).output.format == .json)
    }

    @Test("a format that is not text or json, or two spellings that disagree, is a usage error")
    func refusals() throws {
        #expect(refusal(["list", "-o", "yaml"])?.contains("'yaml'") == true)
        #expect(refusal(["plan", "x.yaml", "--format", "xml"]) != nil)
        #expect(refusal(["list", "-o", "text", "--json"]) == "-o text and --json ask for different formats: use -o alone")
        #expect(refusal(["plan", "x.yaml", "-o", "json", "--format", "text"]) == "-o json and --format ask for different formats: use -o alone")
        // The older spellings are only where they were.
        #expect(refusal(["schedules", "--json"]) != nil)
        #expect(refusal(["validate", "x.yaml", "--format", "json"]) != nil)
    }

    @Test("submit --cron checks the expression and the time zone before any agent is asked")
    func cronCheckedLocally() throws {
        let good = try parse(["submit", "x.yaml", "--cron", "30 2 * * 1-5", "--time-zone", "Europe/Berlin"], as: SubmitCommand.self)
        #expect(good.cron == "30 2 * * 1-5")
        _ = try parse(["submit", "x.yaml", "--cron", "@daily"], as: SubmitCommand.self)
        #expect(refusal(["submit", "x.yaml", "--cron", "61 * * * *"])?.contains("cron field 'minute' value '61'") == true,
                "\(refusal(["submit", "x.yaml", "--cron", "61 * * * *"]) ?? "accepted")")
        #expect(refusal(["submit", "x.yaml", "--cron", "0 3 * *"])?.contains("has 4 fields") == true)
        #expect(refusal(["submit", "x.yaml", "--cron", "0 3 * * *", "--time-zone", "Mars/Olympus"])
                == "--time-zone 'Mars/Olympus' is unknown: use an IANA name such as Europe/Berlin or UTC")
        #expect(refusal(["submit", "x.yaml", "--cron", "0 0 30 2 *"]) == "cron '0 0 30 2 *' never fires in the next 5 years")
        #expect(refusal(["submit", "x.yaml", "--time-zone", "UTC"]) == "--time-zone goes with --cron")
    }

    @Test("one agent's JSON entry: its data under the command's key, or its error (and the agent's details); nothing for neither")
    func agentEntries() throws {
        let client = AgentClient(endpoint: AgentEndpoint(name: "web-1", url: "http://10.0.0.5:7465"), token: nil,
                                 http: try AgentClient.http(tls: ClientTLS()))
        let failure = AgentFailure(kind: .refused, status: 422, code: "preflight_failed", message: "preflight failed", details: ["tc missing"])
        let entries = AgentEntries(agents: [
            AgentEntry(client, "removed", .success(true)),
            AgentEntry(client, "removed", .failure(failure)),
            AgentEntry<Bool>(client, "removed", value: nil),
        ])
        #expect(try jsonLine(entries) == """
            {"agents":[{"agent":"web-1","removed":true,"url":"http://10.0.0.5:7465"},\
            {"agent":"web-1","details":["tc missing"],"error":"preflight failed","url":"http://10.0.0.5:7465"},\
            {"agent":"web-1","url":"http://10.0.0.5:7465"}]}

            """)
    }

    @Test("events -o json over several agents: each object names its agent; over one agent it is as the agent sent it")
    func eventLines() {
        let event = EventStreamParser.Message(event: "inject", data: #"{"event":"inject","seq":3}"#, id: "3")
        #expect(EventsCommand.json(event, agent: nil) == #"{"event":"inject","seq":3}"#)
        #expect(EventsCommand.json(event, agent: "web \"1\"") == #"{"agent":"web \"1\"","event":"inject","seq":3}"#)
        #expect(EventsCommand.json(.init(event: "status", data: "{}", id: nil), agent: "a") == #"{"agent":"a"}"#)
    }

    @Test("schedule ids: 's' and up to 15 lowercase letters and digits; fresh ones look like the agent's own")
    func scheduleIDs() {
        for id in ["s4c2e9a10", "s1", "snightly2026", "s" + String(repeating: "a", count: 15)] {
            #expect(ScheduleID.isValid(id), "\(id)")
        }
        for id in ["", "s", "4c2e9a10", "S4C2E9A10", "s-1", "s_1", "s" + String(repeating: "a", count: 16), "s4c2/../x", "sé"] {
            #expect(!ScheduleID.isValid(id), "\(id)")
        }
        let fresh = ScheduleID.random()
        #expect(ScheduleID.isValid(fresh) && fresh.count == 9 && fresh.dropFirst().allSatisfy(\.isHexDigit), "\(fresh)")
    }
}
