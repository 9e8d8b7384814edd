@testable import FaultlineCLI
import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The controller commands against real agents on loopback: waiting for results, unreachable agents, SIGTERM.
@Suite(.serialized, .enabled(if: Privilege.isRoot, "needs root: runs pause real processes and start guards"))
struct ControllerCommandTests {
    static let token = "ctl-\(UInt64.random(in: 0 ... .max))"

    func scratch() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-ctl-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Runs `faultline ARGS --token-file F`; exit status and output.
    func faultline(_ arguments: [String], directory: String) async throws -> (exit: Int32, output: String) {
        let log = "\(directory)/cli-\(UInt32.random(in: 0 ... .max)).log"
        let tokenFile = directory + "/controller-token"
        if !FileManager.default.fileExists(atPath: tokenFile) {
            _ = FileManager.default.createFile(atPath: tokenFile, contents: Data(Self.token.utf8), attributes: [.posixPermissions: 0o600])
        }
        let child = try ChildProcess.spawn([TestPaths.faultline] + arguments + ["--token-file", tokenFile], table: ProcessTable(), output: log)
        let exit = await ChildProcess.waitForExit(child.pid)
        return (exit, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    @Test("faultline report fetches a finished run's report in each format (to a file or stdout); with --log-format json every agent line is JSON and a run's lines carry its id")
    func reportAndJSONLog() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let agent = try await TestAgent.start(directory: directory, state: directory + "/state", token: Self.token, extra: ["--log-format", "json"])
        do {
            let file = directory + "/short.yaml"
            try agentScenario("report-me", faults: pauseFault("freeze", sleepers: sleepers, duration: "300ms"))
                .write(toFile: file, atomically: true, encoding: .utf8)
            let (exit, output) = try await faultline(["submit", file, "--agent", agent.url, "--wait"], directory: directory)
            #expect(exit == 0, "\(output)")
            let runs = try await agent.call(.GET, "/v1/runs").json["runs"] as? [[String: Any]]
            let id = try #require(runs?.first?["id"] as? String)
            let junit = directory + "/junit.xml"
            let (junitExit, junitOutput) = try await faultline(["report", id, "--agent", agent.url, "--format", "junit", "-o", junit], directory: directory)
            #expect(junitExit == 0, "\(junitOutput)")
            let xml = (try? String(contentsOfFile: junit, encoding: .utf8)) ?? ""
            #expect(xml.contains("<testsuite name=\"report-me\"") && xml.contains("failures=\"0\""), "\(xml)")
            let (mdExit, markdown) = try await faultline(["report", id, "--agent", agent.url], directory: directory)
            #expect(mdExit == 0 && markdown.contains("# Game day: report-me"), "\(markdown)")
            let (missingExit, missing) = try await faultline(["report", "feedbeef", "--agent", agent.url], directory: directory)
            #expect(missingExit == 2 && missing.contains("no agent has run 'feedbeef'"), "\(missing)")

            // submit --wait --report --junit over two agents: each run's reports in a folder of its agent, one JUnit
            // file with a suite per agent.
            let second = try await TestAgent.start(directory: directory, state: directory + "/state2", token: Self.token)
            let burn = directory + "/burn.yaml"
            try agentScenario("fleet-burn", faults: "    - {name: burn, type: cpu-stress, duration: 300ms, workers: 1, load: 10%}")
                .write(toFile: burn, atomically: true, encoding: .utf8)
            let reports = directory + "/reports", fleetJUnit = directory + "/fleet.xml"
            let fleetAnswer: (exit: Int32, output: String)
            do {
                fleetAnswer = try await faultline(["submit", burn, "--agent", agent.url, "--agent", second.url, "--wait",
                                                   "--report", reports, "--junit", fleetJUnit], directory: directory)
            } catch {
                await second.stop()
                throw error
            }
            await second.stop()
            let (fleetExit, fleet) = fleetAnswer
            #expect(fleetExit == 0, "\(fleet)")
            for name in [agent.url, second.url].map({ String($0.split(separator: "/").last ?? "") }) {
                for file in ["report.json", "report.md", "report.html"] {
                    #expect(FileManager.default.fileExists(atPath: "\(reports)/\(ReportFetch.folderName(name))/\(file)"), "\(name)/\(file): \(fleet)")
                }
            }
            let fleetXML = (try? String(contentsOfFile: fleetJUnit, encoding: .utf8)) ?? ""
            #expect(fleetXML.components(separatedBy: "<testsuite ").count == 3 && fleetXML.contains(" · fleet-burn\""), "\(fleetXML)")
            let (noWait, refused) = try await faultline(["submit", burn, "--agent", agent.url, "--junit", fleetJUnit], directory: directory)
            #expect(noWait == 2 && refused.contains("need --wait"), "\(refused)")
            let ids = Set(((try await agent.call(.GET, "/v1/runs").json["runs"] as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String })
            #expect(ids.count == 2 && ids.contains(id))
            await agent.stop()
            let lines = agent.output.split(separator: "\n")
            #expect(lines.count > 5)
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not JSON: \(line)")
                if let object, ["inject", "revert", "start", "end"].contains(object["event"] as? String) {
                    #expect(ids.contains(object["run"] as? String ?? "-"), "a run's line names its run: \(line)")
                }
            }
            #expect(lines.contains { $0.contains("\"event\":\"listening\"") }, "\(agent.output)")
        } catch {
            await agent.stop()
            throw error
        }
    }

    @Test("submit --wait exits with the run's code; an unreachable agent is named with the reason, the others go on (exit 3)")
    func waitAndUnreachable() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let agent = try await TestAgent.start(directory: directory, state: directory + "/state", token: Self.token)
        do {
            let file = directory + "/short.yaml"
            try agentScenario("short-freeze", faults: pauseFault("freeze", sleepers: sleepers, duration: "400ms"))
                .write(toFile: file, atomically: true, encoding: .utf8)
            let (exit, output) = try await faultline(["submit", file, "--agent", agent.url, "--wait"], directory: directory)
            #expect(exit == 0, "\(output)")
            #expect(output.contains(": succeeded"), "\(output)")
            #expect(sleepers.state(target) == "S")

            // Global options before the command (as the README shows them) are the command's.
            let (globalExit, globalOutput) = try await faultline(["--agent", agent.url, "list"], directory: directory)
            #expect(globalExit == 0, "\(globalOutput)")
            // A port nobody listens on: refused at once, named; the live agent's runs still listed.
            let dead = "http://127.0.0.1:1"
            let (listExit, list) = try await faultline(["list", "--agent", agent.url, "--agent", dead], directory: directory)
            #expect(listExit == 3, "\(list)")
            #expect(list.contains("127.0.0.1:1") && list.contains("unreachable") && list.contains("connection refused"), "\(list)")
            #expect(list.contains("short-freeze  succeeded"), "\(list)")

            let (submitExit, submitted) = try await faultline(["submit", file, "--agent", dead, "--agent", agent.url], directory: directory)
            #expect(submitExit == 3, "\(submitted)")
            #expect(submitted.contains("refused") && submitted.contains("running"), "\(submitted)")
            let (abortExit, aborted) = try await faultline(["abort", "--all", "--agent", agent.url], directory: directory)
            #expect(abortExit == 0, "\(aborted)")
            #expect(sleepers.state(target) == "S")

            // A broken scenario never reaches the agents: every error with its position, exit 2.
            let broken = directory + "/broken.yaml"
            try "apiVersion: faultline/v1\nkind: Scenario\nmetadata: {name: broken}\nspec: {maxDuration: 1m, faults: [], dealy: 1}\n"
                .write(toFile: broken, atomically: true, encoding: .utf8)
            let (brokenExit, brokenOutput) = try await faultline(["submit", broken, "--agent", agent.url], directory: directory)
            #expect(brokenExit == 2)
            #expect(brokenOutput.contains("broken.yaml:4:"), "\(brokenOutput)")
        } catch {
            await agent.stop()
            throw error
        }
        #expect(await agent.stop() == 0)
    }

    /// Runs `faultline ARGS --token-file F` with stdout and stderr apart (for -o json), for 60 s at most.
    func faultlineApart(_ arguments: [String], directory: String) async throws -> CommandResult {
        let tokenFile = directory + "/controller-token"
        if !FileManager.default.fileExists(atPath: tokenFile) {
            _ = FileManager.default.createFile(atPath: tokenFile, contents: Data(Self.token.utf8), attributes: [.posixPermissions: 0o600])
        }
        return try await SubprocessRunner().run([TestPaths.faultline] + arguments + ["--token-file", tokenFile], timeout: .seconds(60), outputLimit: 4 << 20)
    }

    func object(_ text: some StringProtocol) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    func agents(_ text: String) throws -> [[String: Any]] {
        try #require(try object(text)["agents"] as? [[String: Any]], "no agents in \(text)")
    }

    @Test("a fleet schedule has one id on every agent, 'unschedule ID' removes it from all; a bad cron reaches no agent; submit, status, schedules and events -o json parse")
    func fleetScheduleAndJSON() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = try await TestAgent.start(directory: directory, state: directory + "/state-1", token: Self.token)
        let second: TestAgent
        do { second = try await TestAgent.start(directory: directory, state: directory + "/state-2", token: Self.token) } catch {
            await first.stop()
            throw error
        }
        do {
            let both = ["--agent", first.url, "--agent", second.url]
            let file = directory + "/nightly.yaml"
            let scenario = agentScenario("nightly", faults: pauseFault("freeze", sleepers: sleepers, duration: "300ms"))
            try scenario.write(toFile: file, atomically: true, encoding: .utf8)

            // A bad cron expression or time zone exits 2 with the reason, and no agent is asked (the audit log keeps
            // every POST, refused ones too).
            let badCron = try await faultlineApart(["submit", file, "--cron", "61 * * * *"] + both, directory: directory)
            #expect(badCron.exitCode == 2 && badCron.standardError.contains("value '61'"), "\(badCron.standardError)")
            let badZone = try await faultlineApart(["submit", file, "--cron", "@daily", "--time-zone", "Mars/Olympus"] + both, directory: directory)
            #expect(badZone.exitCode == 2 && badZone.standardError.contains("'Mars/Olympus' is unknown"), "\(badZone.standardError)")
            for agent in [first, second] {
                let audit = try await agent.call(.GET, "/v1/audit").json["entries"] as? [[String: Any]] ?? []
                #expect(audit.isEmpty, "\(audit)")
            }

            // One id, chosen by the controller, on both agents.
            let scheduled = try await faultlineApart(["submit", file, "--cron", "30 2 * * *", "--time-zone", "Europe/Berlin", "-o", "json"] + both,
                                                     directory: directory)
            #expect(scheduled.exitCode == 0, "\(scheduled.standardError)")
            let id = try #require(try object(scheduled.standardOutput)["schedule"] as? String)
            #expect(ScheduleID.isValid(id), "\(id)")
            let made = try agents(scheduled.standardOutput)
            #expect(made.map { $0["url"] as? String } == [first.url, second.url])
            #expect(made.allSatisfy { ($0["schedule"] as? [String: Any])?["id"] as? String == id }, "\(made)")
            let listed = try await faultlineApart(["schedules", "-o", "json"] + both, directory: directory)
            #expect(listed.exitCode == 0, "\(listed.standardError)")
            #expect(try agents(listed.standardOutput).allSatisfy { (($0["schedules"] as? [[String: Any]]) ?? []).map { $0["id"] as? String } == [id] },
                    "\(listed.standardOutput)")

            // The agent takes a given id once (409 after that) and refuses one that is not a schedule id (400).
            func request(_ id: String) throws -> String {
                String(decoding: try JSONSerialization.data(withJSONObject: ["scenario": scenario, "cron": "@daily", "id": id]), as: UTF8.self)
            }
            let taken = try await first.call(.POST, "/v1/schedules", body: try request(id))
            #expect(taken.status == 409, "\(taken.body)")
            let takenError = taken.json["error"] as? [String: Any]
            #expect(takenError?["code"] as? String == "schedule_exists" && (takenError?["message"] as? String)?.contains("'\(id)' already exists") == true,
                    "\(taken.body)")
            let invalid = try await first.call(.POST, "/v1/schedules", body: try request("../x"))
            #expect(invalid.status == 400 && invalid.body.contains("schedule id '../x' is not valid"), "\(invalid.body)")

            // unschedule ID: gone from both.
            let removed = try await faultlineApart(["unschedule", id] + both, directory: directory)
            #expect(removed.exitCode == 0, "\(removed.standardError)")
            #expect(removed.standardOutput.components(separatedBy: ": removed \(id)").count - 1 == 2, "\(removed.standardOutput)")
            for agent in [first, second] {
                #expect((try await agent.call(.GET, "/v1/schedules").json["schedules"] as? [[String: Any]])?.isEmpty == true)
            }

            // A schedule only the first agent has: the second is named, not an error; once none has it, exit 2.
            let single = try await faultlineApart(["submit", file, "--cron", "@daily", "--agent", first.url, "-o", "json"], directory: directory)
            let only = try #require(try object(single.standardOutput)["schedule"] as? String, "\(single.standardError)")
            let partial = try await faultlineApart(["unschedule", only, "-o", "json"] + both, directory: directory)
            #expect(partial.exitCode == 0, "\(partial.standardError)")
            #expect(try agents(partial.standardOutput).map { $0["removed"] as? Bool } == [true, false], "\(partial.standardOutput)")
            let none = try await faultlineApart(["unschedule", only] + both, directory: directory)
            #expect(none.exitCode == 2, "\(none.standardError)")
            #expect(none.standardOutput.contains("has no schedule \(only)") && none.standardError.contains("no agent has schedule '\(only)'"))

            // submit --wait -o json: the run's final status.
            let submitted = try await faultlineApart(["submit", file, "--agent", first.url, "--wait", "-o", "json"], directory: directory)
            #expect(submitted.exitCode == 0, "\(submitted.standardError)")
            let run = try #require(try agents(submitted.standardOutput).first?["run"] as? [String: Any], "\(submitted.standardOutput)")
            #expect(run["state"] as? String == "succeeded" && run["exitCode"] as? Int == 0, "\(run)")
            let runID = try #require(run["id"] as? String)
            #expect(sleepers.state(target) == "S")

            // status ID -o json: the agent that has it shows it, the other neither run nor error.
            let status = try await faultlineApart(["status", runID, "-o", "json"] + both, directory: directory)
            #expect(status.exitCode == 0, "\(status.standardError)")
            let shown = try agents(status.standardOutput)
            #expect((shown.first?["run"] as? [String: Any])?["state"] as? String == "succeeded", "\(status.standardOutput)")
            #expect(shown.count == 2 && shown[1]["run"] == nil && shown[1]["error"] == nil, "\(status.standardOutput)")
            let active = try await faultlineApart(["status", "-o", "json"] + both, directory: directory)
            #expect(active.exitCode == 0)
            #expect(try agents(active.standardOutput).allSatisfy { ($0["runs"] as? [Any])?.isEmpty == true }, "\(active.standardOutput)")

            // events -o json: one JSON object a line, each naming its agent; the last is the final status.
            let events = try await faultlineApart(["events", runID, "-o", "json"] + both, directory: directory)
            #expect(events.exitCode == 0, "\(events.standardError)")
            let lines = try events.standardOutput.split(separator: "\n").map { try object($0) }
            #expect(lines.count > 2 && lines.allSatisfy { $0["agent"] as? String == String(first.url.dropFirst("http://".count)) }, "\(events.standardOutput)")
            #expect(lines.last?["state"] as? String == "succeeded")

            // submit -o json of runs due later, on both agents; abort --all cancels them.
            let later = try await faultlineApart(["submit", file, "--in", "1h", "-o", "json"] + both, directory: directory)
            #expect(later.exitCode == 0, "\(later.standardError)")
            #expect(try agents(later.standardOutput).allSatisfy { ($0["run"] as? [String: Any])?["state"] as? String == "scheduled" }, "\(later.standardOutput)")
            let aborted = try await faultlineApart(["abort", "--all"] + both, directory: directory)
            #expect(aborted.exitCode == 0, "\(aborted.standardError)")
        } catch {
            await first.stop()
            await second.stop()
            throw error
        }
        #expect(await first.stop() == 0)
        #expect(await second.stop() == 0)
    }

    @Test("SIGTERM: the agent reverts every active fault before it exits 0, and remembers why")
    func sigtermReverts() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var agent = try await TestAgent.start(directory: directory, state: directory + "/state", token: Self.token)
        do {
            let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("term", faults: pauseFault("freeze", sleepers: sleepers)))
            let id = try #require(created.json["id"] as? String)
            _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            #expect(sleepers.state(target) == "T")
            let exit = await agent.stop(.term)
            #expect(exit == 0, "\(agent.output)")
            #expect(sleepers.state(target) == "S", "resumed before the agent exited")
            #expect(agent.output.contains("every run was reverted"))

            agent = try await TestAgent.start(directory: directory, state: directory + "/state", token: Self.token)
            let status = try await agent.call(.GET, "/v1/runs/\(id)").json
            #expect(status["state"] as? String == "aborted")
            #expect(status["reason"] as? String == "the agent is shutting down")
        } catch {
            await agent.stop()
            throw error
        }
        #expect(await agent.stop() == 0)
    }
}
