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

    /// Probes that act on the agent's host beyond the network: each needs its opt-in flag on the agent.
    static let optIns: [(probe: String, flag: String, path: String)] = [
        ("{name: shell, command: {argv: [/bin/true]}}", "--allow-command-probes", "spec.steadyState.probes[0].command"),
        (#"{name: prom, prometheus: {url: "http://127.0.0.1:1", query: up, expect: {equals: 1}, bearerToken: {file: /etc/shadow}}}"#,
         "--allow-probe-credentials", "spec.steadyState.probes[0].prometheus.bearerToken"),
    ]

    @Test("command probes and probe credentials submitted over the API (runs and schedules) are refused unless the agent was started with their opt-in flag",
          arguments: optIns.indices)
    func probesThatActOnTheHostNeedTheOptIn(_ index: Int) async throws {
        let (probe, flag, path) = Self.optIns[index]
        let directory = try makeTestDirectory("trust")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        let steadyState = "  steadyState:\n    probes:\n      - \(probe)\n"
        let scenario = agentScenario("opt-in", steadyState: steadyState, faults: pauseFault("freeze", sleepers: sleepers, duration: "1s"))
        let schedule = String(decoding: try JSONSerialization.data(withJSONObject: ["scenario": scenario, "cron": "0 3 * * *"]), as: UTF8.self)
        for allowed in [false, true] {
            try await withTestAgent(directory: directory, state: "\(directory)/state-\(allowed)", token: AgentAPITests.token,
                                    extra: allowed ? [flag] : []) { agent in
                let submitted = try await agent.call(.POST, "/v1/runs", body: scenario)
                let scheduled = try await agent.call(.POST, "/v1/schedules", body: schedule)
                if allowed {
                    #expect(submitted.status == 201 && scheduled.status == 201, "\(submitted.body) \(scheduled.body)")
                    let id = try #require(submitted.json["id"] as? String)
                    _ = try await agent.waitForRun(id, timeout: .seconds(20)) { ["succeeded", "deviated"].contains($0["state"] as? String ?? "") }
                } else {
                    for answer in [submitted, scheduled] {
                        #expect(answer.status == 400, "\(answer.body)")
                        let error = answer.json["error"] as? [String: Any] ?? [:]
                        #expect(error["code"] as? String == "invalid_scenario")
                        #expect((error["message"] as? String)?.contains(flag) == true, "\(answer.body)")
                        #expect(((error["details"] as? [[String: Any]])?.first?["path"] as? String) == path, "\(answer.body)")
                    }
                    let runs = try await agent.call(.GET, "/v1/runs").json["runs"] as? [[String: Any]] ?? []
                    #expect(runs.isEmpty, "nothing was started")
                }
            }
        }
    }
}
