import FaultlineAgent
import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agent's API end to end: a real `faultline agent` on loopback, real HTTP, real (paused) processes.
@Suite(.serialized, .enabled(if: Privilege.isRoot, "needs root: runs pause real processes and start guards"))
struct AgentAPITests {
    static let token = "t0k-\(UInt64.random(in: 0 ... .max))"

    /// Runs `body` with a fresh agent; the agent is stopped (reverting whatever runs) and its files removed, also on failure.
    func withAgent(token: String? = AgentAPITests.token, extra: [String] = [], _ body: (TestAgent, String) async throws -> Void) async throws {
        let directory = try makeTestDirectory("agent")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let agent = try await TestAgent.start(directory: directory, state: directory + "/state", token: token, extra: extra)
        do {
            try await body(agent, directory)
        } catch {
            await agent.stop()
            throw error
        }
        let exit = await agent.stop()
        #expect(exit == 0, "the agent exits 0 on SIGTERM: \(agent.output)")
    }

    @Test("401 without or with a wrong token; /healthz is open; errors are JSON")
    func authentication() async throws {
        try await withAgent { agent, _ in
            #expect(try await agent.call(.GET, "/healthz", token: .some(nil)).status == 200)
            let missing = try await agent.call(.GET, "/v1/runs", token: .some(nil))
            #expect(missing.status == 401)
            #expect((missing.json["error"] as? [String: Any])?["code"] as? String == "unauthorized")
            #expect(missing.headers["WWW-Authenticate"].first?.hasPrefix("Bearer") == true)
            #expect(try await agent.call(.GET, "/v1/runs", token: .some(Self.token + "x")).status == 401)
            #expect(try await agent.call(.GET, "/v1/runs", token: .some(String(Self.token.dropLast()))).status == 401)
            #expect(try await agent.call(.GET, "/metrics", token: .some(nil)).status == 401)
            #expect(try await agent.call(.GET, "/v1/runs").status == 200)
            #expect(try await agent.call(.GET, "/v1/runs", token: .some(Self.token + String(repeating: "A", count: 256))).status == 401)
            for scheme in ["bearer", "BEARER"] {
                #expect(try await agent.call(.GET, "/v1/runs", token: .some(nil), headers: [("Authorization", "\(scheme) \(Self.token)")]).status == 200,
                        "scheme '\(scheme)'")
            }
        }
    }

    @Test("SIGHUP and SIGQUIT stop the agent as SIGTERM does: every run is aborted and reverted, then it exits 0",
          arguments: [SIGTERM, SIGHUP, SIGQUIT])
    func everyStopSignalRevertsEveryRun(signal: Int32) async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        let directory = try makeTestDirectory("agent")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let agent = try await TestAgent.start(directory: directory, state: directory + "/state", token: Self.token)
        do {
            let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("stop-\(signal)", faults: pauseFault("freeze", sleepers: sleepers)))
            let id = try #require(created.json["id"] as? String, "\(created.body)")
            _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            #expect(sleepers.state(target) == "T")
            kill(agent.child.pid, signal)
            let exit = await waitForExit(agent.child.pid)
            #expect(exit == 0, "signal \(signal): \(agent.output)")
            #expect(agent.output.contains("every run was reverted"), "\(agent.output)")
            #expect(sleepers.state(target) == "S", "the agent reverted before it exited")
            let status = FileManager.default.contents(atPath: "\(directory)/state/runs/\(id)/status.json")
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } ?? [:]
            #expect(status["state"] as? String == "aborted", "\(status)")
            #expect(status["reason"] as? String == "the agent is shutting down", "\(status)")
        } catch {
            await agent.stop(.kill)
            throw error
        }
    }

    @Test("400 names every error with its position; 404 for an unknown run or path; 413 for a body over the limit")
    func badRequests() async throws {
        try await withAgent { agent, _ in
            let bad = "apiVersion: faultline/v1\nkind: Scenario\nmetadata: {name: bad}\nspec:\n  maxDuration: 10s\n  faults:\n    - name: x\n      type: latency\n      dealy: 1s\n"
            let answer = try await agent.call(.POST, "/v1/runs", body: bad, headers: [("X-Faultline-Source", "game/bad.yaml")])
            #expect(answer.status == 400)
            let error = answer.json["error"] as? [String: Any]
            #expect(error?["code"] as? String == "invalid_scenario")
            let details = error?["details"] as? [[String: Any]] ?? []
            let messages = details.compactMap { $0["message"] as? String }
            #expect(messages.contains { $0.hasPrefix("game/bad.yaml:9:7: spec.faults[0]: unknown key 'dealy' (did you mean 'delay'?)") }, "\(messages)")
            #expect(details.contains { $0["line"] as? Int == 9 && $0["column"] as? Int == 7 })
            let runs = try await agent.call(.GET, "/v1/runs").json["runs"] as? [Any]
            #expect(runs?.isEmpty == true, "nothing was created")

            let unknown = try await agent.call(.GET, "/v1/runs/nosuchrun")
            #expect(unknown.status == 404)
            #expect((unknown.json["error"] as? [String: Any])?["code"] as? String == "not_found")
            #expect(try await agent.call(.GET, "/v1/runs/nosuchrun/report").status == 404)
            #expect(try await agent.call(.POST, "/v1/runs/nosuchrun/abort").status == 404)
            let path = try await agent.call(.GET, "/v1/nothing-here")
            #expect(path.status == 404)
            #expect(path.json["error"] != nil, "the router's 404 has the API's error shape: \(path.body)")

            let wrongMethod = try await agent.call(.PUT, "/v1/runs")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.headers["Allow"].first == "GET, POST")
            #expect((wrongMethod.json["error"] as? [String: Any])?["code"] as? String == "method_not_allowed")
            let encoded = try await agent.call(.GET, "/v1/runs/%41bc")
            #expect(encoded.status == 404)
            #expect(((encoded.json["error"] as? [String: Any])?["message"] as? String)?.contains("'Abc'") == true, "\(encoded.body)")

            let huge = String(repeating: "# padding\n", count: 200_000)
            let tooLarge = try await agent.call(.POST, "/v1/runs", body: huge)
            #expect(tooLarge.status == 413)
            #expect((tooLarge.json["error"] as? [String: Any])?["code"] as? String == "too_large")

            #expect(try await agent.call(.POST, "/v1/runs?lease=soon", body: agentScenario("x", faults: "")).status == 400)
            #expect(try await agent.call(.POST, "/v1/runs?at=tomorrow", body: agentScenario("x", faults: "")).status == 400)
            let farAway = try await agent.call(.POST, "/v1/runs?at=9999-01-01T00:00:00Z", body: agentScenario("far", faults: "    - {name: cpu, type: cpu-stress, duration: 1s}"))
            #expect(farAway.status == 400 && farAway.body.contains("more than a year away"), "\(farAway.body)")
        }
    }

    @Test("submit, list, status, events (SSE), 409 on the same processes, abort, report, metrics")
    func runLifecycle() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        try await withAgent { agent, directory in
            let scenario = agentScenario("freeze-api", faults: pauseFault("freeze", sleepers: sleepers))
            let created = try await agent.call(.POST, "/v1/runs", body: scenario)
            #expect(created.status == 201, "\(created.body)")
            let id = try #require(created.json["id"] as? String)
            #expect(created.headers["Location"].first == "/v1/runs/\(id)")
            let active = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            #expect(active["state"] as? String == "running")
            #expect(sleepers.state(target) == "T")

            // The same processes cannot be frozen twice: 409, naming the run that holds them.
            let second = try await agent.call(.POST, "/v1/runs", body: agentScenario("freeze-again", faults: pauseFault("again", sleepers: sleepers)))
            #expect(second.status == 409)
            #expect((second.json["error"] as? [String: Any])?["heldBy"] as? String == id)

            let list = try await agent.call(.GET, "/v1/runs").json["runs"] as? [[String: Any]] ?? []
            #expect(list.map { $0["id"] as? String } == [id])

            // A report exists only once the run is over.
            #expect(try await agent.call(.GET, "/v1/runs/\(id)/report").status == 409)

            // Follow the event stream while aborting.
            let events = Task { try await agent.call(.GET, "/v1/runs/\(id)/events").body }
            try await Task.sleep(for: .milliseconds(200))
            let aborted = try await agent.call(.POST, "/v1/runs/\(id)/abort")
            #expect(aborted.status == 200)
            let final = try await agent.waitForRun(id) { ($0["state"] as? String) == "aborted" }
            #expect(final["exitCode"] as? Int == 1)
            #expect(final["reason"] as? String == "aborted by the controller")
            #expect(sleepers.state(target) == "S", "the process runs again")
            let stream = try await events.value
            #expect(stream.contains("event: inject\n"))
            #expect(stream.contains("event: revert\n"))
            // The controller's abort is a run event too (what webhooks and Grafana hear).
            #expect(stream.contains("event: abort\ndata: ") && stream.contains("abort: aborted by the controller"), "\(stream)")
            #expect(stream.hasSuffix("\n\n") && stream.contains("event: end\n"), "\(stream)")
            #expect(stream.components(separatedBy: "event: end\n").count == 2, "one end event per stream, the last: \(stream)")
            #expect(stream.contains("id: 1\n"))

            // Replaying the finished stream from after event 2 skips events 1 and 2.
            let replay = try await agent.call(.GET, "/v1/runs/\(id)/events", headers: [("Last-Event-ID", "2")]).body
            #expect(!replay.contains("id: 1\n") && !replay.contains("id: 2\n") && replay.contains("id: 3\n"))

            let report = try await agent.call(.GET, "/v1/runs/\(id)/report")
            #expect(report.status == 200)
            #expect(report.json["state"] as? String == "aborted")
            #expect(report.json["runID"] as? String == id)

            let metrics = try await agent.call(.GET, "/metrics")
            #expect(metrics.headers["Content-Type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
            #expect(metrics.body.contains("faultline_runs_total{result=\"aborted\"} 1\n"))
            #expect(metrics.body.contains("faultline_aborts_total{reason=\"controller\"} 1\n"))
            #expect(metrics.body.contains("faultline_fault_injections_total{type=\"pause-process\",result=\"success\"} 1\n"))
            #expect(metrics.body.contains("faultline_reverts_total{type=\"pause-process\",result=\"success\"} 1\n"))
            #expect(metrics.body.contains("faultline_faults_active{type=\"pause-process\"} 0.0\n"))
            #expect(metrics.body.contains("faultline_revert_duration_seconds_count 1\n"))
            // The HTTP server's own request metrics (Hummingbird's MetricsMiddleware), in the same registry.
            #expect(metrics.body.contains("# TYPE hb_requests_total counter\n"), "\(metrics.body)")
            #expect(metrics.body.contains("hb_requests_total{http_route=\"/v1/runs\",http_request_method=\"POST\",http_response_status_code=\"201\"} 1\n"))
            #expect(metrics.body.contains("hb_request_errors_total{http_route=\"/v1/runs\",http_request_method=\"POST\",error_type=\"409\"} 1\n"))
            #expect(metrics.body.contains("# TYPE http_server_request_duration_seconds histogram\n"))
            try await promtoolCheck(metrics.body, directory: directory)
        }
    }

    @Test("a quiet event stream gets keep-alive comments, so proxies do not close it as idle")
    func keepAlive() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        try await withAgent(extra: ["--sse-keep-alive", "200ms"]) { agent, _ in
            let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("quiet", faults: pauseFault("freeze", sleepers: sleepers)))
            let id = try #require(created.json["id"] as? String)
            _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            let events = Task { try await agent.call(.GET, "/v1/runs/\(id)/events").body }
            try await Task.sleep(for: .milliseconds(900))
            _ = try await agent.call(.POST, "/v1/runs/\(id)/abort")
            let stream = try await events.value
            let beats = stream.components(separatedBy: ": keep-alive\n\n").count - 1
            #expect(beats >= 2, "\(stream)")
            #expect(!stream.contains("id: 0\n"), "keep-alives are not numbered events")
            #expect(stream.contains("event: end\n"))
        }
    }

    /// `promtool check metrics` on the text, when promtool is installed (`.ci/run` installs it).
    func promtoolCheck(_ text: String, directory: String) async throws {
        guard Privilege.hasTool("promtool") else {
            print("skipped: promtool check metrics — promtool is not installed (Debian package prometheus)")
            return
        }
        let file = directory + "/metrics.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let child = try ChildProcess.spawn(["/bin/sh", "-c", "promtool check metrics < \"$0\" > \"$0.out\" 2>&1", file], table: ProcessTable())
        let exit = await ChildProcess.waitForExit(child.pid)
        let output = (try? String(contentsOfFile: file + ".out", encoding: .utf8)) ?? ""
        #expect(exit == 0, "promtool check metrics: \(output)")
    }

    @Test("abort-all stops every run; at-runs wait, fire on time, or are cancelled; cron schedules are kept and removed")
    func abortAllAndSchedules() async throws {
        let first = try TestSleepers()
        let second = try TestSleepers()
        defer {
            first.removeAll()
            second.removeAll()
        }
        let one = try first.start()
        let two = try second.start()
        try await withAgent { agent, _ in
            var ids: [String] = []
            for (name, sleepers) in [("one", first), ("two", second)] {
                let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("freeze-\(name)", faults: pauseFault("freeze", sleepers: sleepers)))
                #expect(created.status == 201, "\(created.body)")
                ids.append(try #require(created.json["id"] as? String))
            }
            let later = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
            let scheduled = try await agent.call(.POST, "/v1/runs?at=\(later)", body: agentScenario("later", faults: pauseFault("later", sleepers: first)))
            #expect(scheduled.status == 201)
            #expect(scheduled.json["state"] as? String == "scheduled")
            let laterID = try #require(scheduled.json["id"] as? String)
            for id in ids {
                _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            }
            #expect(first.state(one) == "T" && second.state(two) == "T")

            let all = try await agent.call(.POST, "/v1/abort")
            #expect(all.status == 200)
            #expect(Set((all.json["aborted"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }) == Set(ids + [laterID]))
            for id in ids + [laterID] {
                let status = try await agent.waitForRun(id) { ($0["state"] as? String) == "aborted" }
                #expect(status["reason"] as? String != nil)
            }
            #expect(first.state(one) == "S" && second.state(two) == "S")

            // A one-shot run a moment ahead fires by itself and runs to the end.
            let soon = ISO8601DateFormatter().string(from: Date().addingTimeInterval(2))
            let timed = try await agent.call(.POST, "/v1/runs?at=\(soon)", body: agentScenario("soon", faults: pauseFault("soon", sleepers: second, duration: "300ms")))
            let timedID = try #require(timed.json["id"] as? String)
            let done = try await agent.waitForRun(timedID, timeout: .seconds(15)) { ($0["state"] as? String) == "succeeded" }
            #expect(done["exitCode"] as? Int == 0)
            #expect(second.state(two) == "S")

            // Cron schedules: created with their next time in their zone, listed, removed.
            let request = try JSONSerialization.data(withJSONObject: [
                "scenario": agentScenario("nightly", faults: pauseFault("nightly", sleepers: first)), "cron": "30 2 * * *", "timeZone": "Europe/Berlin",
            ])
            let created = try await agent.call(.POST, "/v1/schedules", body: String(decoding: request, as: UTF8.self))
            #expect(created.status == 201, "\(created.body)")
            let scheduleID = try #require(created.json["id"] as? String)
            let nextText = created.json["nextAt"] as? String
            let next = try #require(nextText.flatMap { APIDate.parse($0) })
            var berlin = Calendar(identifier: .gregorian)
            berlin.timeZone = TimeZone(identifier: "Europe/Berlin")!
            #expect(berlin.component(.hour, from: next) == 2 || berlin.component(.hour, from: next) == 3)  // 3 only on a spring-forward night
            #expect(berlin.component(.minute, from: next) == 30)
            let listed = try await agent.call(.GET, "/v1/schedules").json["schedules"] as? [[String: Any]] ?? []
            #expect(listed.contains { $0["id"] as? String == scheduleID && $0["cron"] as? String == "30 2 * * *" })
            let badCron = try JSONSerialization.data(withJSONObject: ["scenario": agentScenario("x", faults: pauseFault("x", sleepers: first)), "cron": "61 * * * *"])
            let refused = try await agent.call(.POST, "/v1/schedules", body: String(decoding: badCron, as: UTF8.self))
            #expect(refused.status == 400)
            #expect(((refused.json["error"] as? [String: Any])?["message"] as? String)?.contains("'61'") == true)
            #expect(try await agent.call(.DELETE, "/v1/schedules/\(scheduleID)").status == 204)
            #expect(try await agent.call(.DELETE, "/v1/schedules/\(scheduleID)").status == 404)
            let after = try await agent.call(.GET, "/v1/schedules").json["schedules"] as? [[String: Any]] ?? []
            #expect(!after.contains { $0["id"] as? String == scheduleID })
        }
    }

    @Test("a token file others can read, or a non-loopback address without a token or with one under 32 characters, is refused (exit 2)")
    func refusesUnsafeSetups() async throws {
        let directory = try makeTestDirectory("agent")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/token"
        _ = FileManager.default.createFile(atPath: file, contents: Data("secret".utf8), attributes: [.posixPermissions: 0o644])
        let short = directory + "/short-token"
        _ = FileManager.default.createFile(atPath: short, contents: Data(String(repeating: "s", count: 31).utf8), attributes: [.posixPermissions: 0o600])
        for (arguments, expected) in [
            (["--token-file", file], "is open to others (mode 644)"),
            (["--listen", "0.0.0.0:0"], "refusing to listen on 0.0.0.0 without a token"),
            (["--listen", "0.0.0.0:0", "--token-file", short], "refusing to listen on 0.0.0.0 with a token of 31 characters: use at least 32"),
        ] {
            let log = directory + "/out-\(expected.count).log"
            let child = try ChildProcess.spawn([TestPaths.faultline, "agent", "--state-dir", directory + "/state"] + arguments,
                                               table: ProcessTable(), output: log)
            let exit = await waitForExit(child.pid)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(exit == 2, "\(arguments): \(output)")
            #expect(output.contains(expected), "\(output)")
        }
    }

    @Test("as process 1 of a PID namespace (a container's entrypoint), or with --supervise (hostPID), the agent serves from a child: after a SIGKILL of the server the guard reverts, then the agent exits",
          .enabled(if: Privilege.canUseNamespaces && Privilege.hasTool("unshare"), "needs ip, iptables, nsenter and unshare"),
          arguments: [true, false])
    func asProcessOneTheAgentOutlivesItsServer(inPIDNamespace: Bool) async throws {
        let namespace = try await TestNamespace.create()
        let directory = try makeTestDirectory("agent")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let agent = try await TestAgent.start(directory: directory, state: directory + "/state", token: Self.token,
                                              extra: inPIDNamespace ? [] : ["--supervise"],
                                              wrapper: inPIDNamespace ? ["/usr/bin/unshare", "--pid", "--fork", "--kill-child", "--mount-proc"] : [])
        func chains() async throws -> Int {
            try await namespace.inside(["iptables", "-S"]).standardOutput.split(separator: "\n").filter { $0.hasPrefix("-N FAULTLINE") }.count
        }
        do {
            let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("pid-one", target: namespace.name,
                                                                                   faults: "    - {name: cut, type: drop, to: {ports: [9999], protocol: tcp}}"))
            let id = try #require(created.json["id"] as? String, "\(created.body)")
            _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            #expect(try await chains() > 0, "the fault is in place")
            let table = ProcessTable()
            let supervisor = inPIDNamespace ? try #require(table.all().first { $0.parentPID == agent.child.pid }, "no process 1 under unshare")
                                            : try #require(table.read(agent.child.pid))
            let server = try #require(table.all().first { $0.parentPID == supervisor.pid && $0.arguments.dropFirst().first == "agent" },
                                      "process 1 has no agent child")
            kill(server.pid, SIGKILL)
            let killed = ContinuousClock.now
            var reverted: Duration?
            while reverted == nil, ContinuousClock.now - killed < .seconds(5) {
                if try await chains() == 0 { reverted = ContinuousClock.now - killed } else { try await Task.sleep(for: .milliseconds(10)) }
            }
            let took = try #require(reverted, "the fault outlived the agent's server")
            print("\(inPIDNamespace ? "process 1" : "--supervise") kept the guard alive: reverted \(took) after the server's SIGKILL")
            #expect(took < .seconds(2))
            let exit = await ChildProcess.waitForExit(agent.child.pid)
            #expect(exit == 128 + SIGKILL, "the supervisor ends with the server's status once the guard is done")
            // The guard logs into the run's folder, never to the agent's output (a pipe that may be gone).
            let log = (try? String(contentsOfFile: "\(directory)/state/runs/\(id)/guard.log", encoding: .utf8)) ?? ""
            #expect(log.contains("reverted by the guard"), "\(log)")
        } catch {
            _ = await agent.stop(.kill)
            await namespace.remove()
            throw error
        }
        await namespace.remove()
    }

    @Test("SIGKILL of the agent during a fault: the guard reverts; the restarted agent reports the run failed, keeps its schedules, reports a missed one")
    func restartAfterCrash() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        let directory = try makeTestDirectory("agent")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"
        var agent = try await TestAgent.start(directory: directory, state: state, token: Self.token)
        do {
            let cron = try JSONSerialization.data(withJSONObject: ["scenario": agentScenario("weekly", faults: pauseFault("weekly", sleepers: sleepers)),
                                                                  "cron": "@weekly"])
            let schedule = try await agent.call(.POST, "/v1/schedules", body: String(decoding: cron, as: UTF8.self))
            let scheduleID = try #require(schedule.json["id"] as? String)
            let soon = ISO8601DateFormatter().string(from: Date().addingTimeInterval(2))
            let missed = try await agent.call(.POST, "/v1/runs?at=\(soon)", body: agentScenario("missed", faults: pauseFault("missed", sleepers: sleepers)))
            let missedID = try #require(missed.json["id"] as? String)
            let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("crash", faults: pauseFault("freeze", sleepers: sleepers)))
            let id = try #require(created.json["id"] as? String)
            _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            #expect(sleepers.state(target) == "T")

            let killed = ContinuousClock.now
            await agent.stop(.kill)
            var resumed: Duration?
            while ContinuousClock.now - killed < .seconds(3) {
                if sleepers.state(target) == "S" { resumed = ContinuousClock.now - killed; break }
                try await Task.sleep(for: .milliseconds(5))
            }
            let reverted = try #require(resumed, "the guard resumed the process after the agent's SIGKILL")
            print("guard revert after the agent's SIGKILL: \(reverted)")
            #expect(reverted < .seconds(1))
            // The one-shot run falls due while the agent is down, and more than the 1 s a late start may take.
            try await Task.sleep(for: .seconds(3.5))

            agent = try await TestAgent.start(directory: directory, state: state, token: Self.token)
            let status = try await agent.call(.GET, "/v1/runs/\(id)").json
            #expect(status["state"] as? String == "failed")
            #expect((status["reason"] as? String)?.contains("the agent stopped during the run") == true, "\(status)")
            #expect((status["reason"] as? String)?.contains("the guard reverted 1 of 1 faults") == true, "\(status)")
            #expect((status["faults"] as? [[String: Any]])?.first?["state"] as? String == "reverted", "\(status)")
            let missedStatus = try await agent.call(.GET, "/v1/runs/\(missedID)").json
            #expect(missedStatus["state"] as? String == "failed")
            #expect((missedStatus["reason"] as? String)?.hasPrefix("missed: due at") == true, "\(missedStatus)")
            let schedules = try await agent.call(.GET, "/v1/schedules").json["schedules"] as? [[String: Any]] ?? []
            #expect(schedules.contains { $0["id"] as? String == scheduleID && $0["state"] as? String == "active" })
            #expect(schedules.contains { $0["id"] as? String == missedID && $0["state"] as? String == "missed" && ($0["missed"] as? [Any])?.count == 1 })
            #expect(sleepers.state(target) == "S")
        } catch {
            await agent.stop()
            throw error
        }
        #expect(await agent.stop() == 0)
    }
}
