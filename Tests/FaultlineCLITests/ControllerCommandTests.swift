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
            await agent.stop()
            let lines = agent.output.split(separator: "\n")
            #expect(lines.count > 5)
            for line in lines {
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object != nil, "not JSON: \(line)")
                if let object, ["inject", "revert", "start", "end"].contains(object["event"] as? String) {
                    #expect(object["run"] as? String == id, "\(line)")
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
