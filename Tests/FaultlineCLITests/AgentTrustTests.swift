import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Who may do what to an agent (docs/agent.md, Trust model): a token on every listener, loopback too, and command
/// probes only with the agent's opt-in.
@Suite(.serialized, .enabled(if: Privilege.isRoot, "needs root: runs pause real processes and start guards"))
struct AgentTrustTests {
    @Test("on loopback without --token-file the agent makes a token (mode 0600) and every request but /healthz needs it; a local controller finds it")
    func loopbackNeedsAToken() async throws {
        let directory = try makeTestDirectory("trust")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"
        try await withTestAgent(directory: directory, state: state) { agent in
            #expect(agent.output.contains("(token in \(state)/agent.token)"), "\(agent.output)")
            var info = stat()
            #expect(stat(state + "/agent.token", &info) == 0 && info.st_mode & 0o777 == 0o600)
            let token = try #require(agent.token)
            #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
            #expect(try await agent.call(.GET, "/healthz", token: .some(nil)).status == 200)
            for path in ["/v1/runs", "/metrics", "/v1/schedules"] {
                #expect(try await agent.call(.GET, path, token: .some(nil)).status == 401, "\(path) without the token")
            }
            #expect(try await agent.call(.GET, "/v1/runs").status == 200)
            // The controller on this host reads the agent's token from the state directory.
            let list = try await SubprocessRunner().run(["/usr/bin/env", "FAULTLINE_STATE_DIR=\(state)", TestPaths.faultline, "list", "--agent", agent.url],
                                                        timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(list.exitCode == 0, "\(list.standardOutput)\(list.standardError)")
            let elsewhere = try await SubprocessRunner().run(["/usr/bin/env", "FAULTLINE_STATE_DIR=\(directory)/other", TestPaths.faultline, "list", "--agent", agent.url],
                                                             timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(elsewhere.exitCode != 0, "without the token file the controller is refused: \(elsewhere.standardOutput)")
        }
    }

    @Test("command probes submitted over the API are refused unless the agent was started with --allow-command-probes")
    func commandProbesNeedTheOptIn() async throws {
        let directory = try makeTestDirectory("trust")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        let steadyState = """
              steadyState:
                probes:
                  - name: shell
                    command: {argv: [/bin/true]}
            """
        let scenario = agentScenario("commands", steadyState: steadyState + "\n", faults: pauseFault("freeze", sleepers: sleepers, duration: "1s"))
        for allowed in [false, true] {
            try await withTestAgent(directory: directory, state: "\(directory)/state-\(allowed)", token: AgentAPITests.token,
                                    extra: allowed ? ["--allow-command-probes"] : []) { agent in
                let submitted = try await agent.call(.POST, "/v1/runs", body: scenario)
                if allowed {
                    #expect(submitted.status == 201, "\(submitted.body)")
                    let id = try #require(submitted.json["id"] as? String)
                    _ = try await agent.waitForRun(id, timeout: .seconds(20)) { ($0["state"] as? String) == "succeeded" }
                } else {
                    #expect(submitted.status == 400, "\(submitted.body)")
                    let error = submitted.json["error"] as? [String: Any] ?? [:]
                    #expect((error["message"] as? String)?.contains("--allow-command-probes") == true, "\(submitted.body)")
                    #expect(((error["details"] as? [[String: Any]])?.first?["path"] as? String) == "spec.steadyState.probes[0].command")
                    let runs = try await agent.call(.GET, "/v1/runs").json["runs"] as? [[String: Any]] ?? []
                    #expect(runs.isEmpty, "nothing was started")
                }
            }
        }
    }
}
