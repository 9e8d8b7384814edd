@testable import FaultlineAgent
import FaultlineCore
import FaultlineEngine
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

/// The agent in-process through `buildAgentApplication` and Hummingbird's router tester: every route, auth and
/// roles, every error shape, and whole runs with fake drivers and scripted probes. No root, no sockets, no processes.
@Suite struct AgentRouterTests {
    static let operate = String(repeating: "o", count: 40)
    static let read = String(repeating: "r", count: 40)

    /// An agent on a state directory of its own, its registry's service running beside the test.
    /// `directory`: the state directory to use and leave (a restart test removes it); nil: a new one, removed after.
    static func withAgent<T>(probes: ScriptedProbes = .healthy, scripts: [String: FakeDriver.Script] = [:], allowCommandProbes: Bool = false,
                             retention: Retention = .standard, directory given: String? = nil,
                             _ body: @Sendable (any TestClientProtocol, RunRegistry) async throws -> T) async throws -> T {
        let directory = given ?? FileManager.default.temporaryDirectory.appendingPathComponent("faultline-agent-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if given == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let credentials = try AgentCredentials(fixed: [AgentCredential(name: "ops", role: .operate, token: operate),
                                                       AgentCredential(name: "viewer", role: .read, token: read)],
                                               file: nil, minimumLength: 32)
        let drivers = Mutex<[FakeDriver]>([])
        defer { drivers.withLock { $0.removeAll() } }
        var configuration = AgentConfiguration(host: "127.0.0.1", port: 0, credentials: credentials, stateDirectory: directory,
                                               executable: "/nonexistent/faultline", forwarded: [])
        configuration.allowCommandProbes = allowCommandProbes
        configuration.retention = retention
        configuration.tick = .milliseconds(20)
        configuration.sessionSettings = { settings in
            settings.guarded = false
            settings.facts = { _, _ in HostFacts() }
            settings.preflight = { _ in PreflightReport(effectiveCapabilities: [], checks: []) }
            settings.probes = { _, _ in probes }
            settings.drivers = { planned, _ in
                let driver = FakeDriver(name: planned.name, script: scripts[planned.name] ?? .init())
                // Kept to the end of the test: a fake whose revert fails keeps its stuck directory as long as it lives.
                drivers.withLock { $0.append(driver) }
                return driver
            }
        }
        let registry = try RunRegistry(configuration: configuration) { _ in }
        await registry.prepare()
        let service = Task { try await registry.run() }
        let app = try buildAgentApplication(registry: registry, configuration: configuration, logger: Logger(label: "test"))
        // The registry stops (its runs reverted) before the state directory goes, also when the test fails.
        let result: Result<T, any Error>
        do { result = .success(try await app.test(.router) { client in try await body(client, registry) }) } catch { result = .failure(error) }
        registry.stopAll()
        service.cancel()
        _ = await service.result
        return try result.get()
    }

    static func headers(_ token: String? = operate) -> HTTPFields {
        var fields = HTTPFields()
        if let token { fields[.authorization] = "Bearer \(token)" }
        return fields
    }

    static func scenario(duration: String = "300ms", probe: String = "{name: web, http: {url: \"http://127.0.0.1:9/\"}, interval: 20ms}",
                         extra: String = "") -> ByteBuffer {
        ByteBuffer(string: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: agent-router}
            spec:
              maxDuration: 10s
              steadyState:
                probes:
                  - \(probe)
            \(extra)
              faults:
                - {name: burn, type: cpu-stress, duration: \(duration), workers: 1, load: 10%}
            """)
    }

    static func json(_ response: TestResponse) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any], "\(String(buffer: response.body))")
    }

    /// Submits the scenario; the new run's id.
    static func submit(_ client: any TestClientProtocol, _ body: ByteBuffer = scenario(), query: String = "") async throws -> String {
        let response = try await client.execute(uri: "/v1/runs" + query, method: .post, headers: headers(), body: body)
        #expect(response.status == .created, "\(String(buffer: response.body))")
        #expect(response.headers[.location]?.hasPrefix("/v1/runs/") == true)
        return try #require(try json(response)["id"] as? String)
    }

    /// Polls the run until it is over (10 s at most); its last status.
    static func finished(_ client: any TestClientProtocol, _ id: String) async throws -> [String: Any] {
        for _ in 0..<500 {
            let status = try json(try await client.execute(uri: "/v1/runs/\(id)", method: .get, headers: headers(read)))
            if let state = status["state"] as? String, !["scheduled", "running", "reverting"].contains(state) { return status }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("run \(id) did not end")
        return [:]
    }

    @Test("auth: /healthz is open; no token or a wrong one is 401; a read token cannot submit (403); every error is JSON")
    func auth() async throws {
        try await Self.withAgent { client, _ in
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            let missing = try await client.execute(uri: "/v1/runs", method: .get, headers: Self.headers(nil))
            #expect(missing.status == .unauthorized)
            #expect((try Self.json(missing)["error"] as? [String: Any])?["code"] as? String == "unauthorized")
            #expect(try await client.execute(uri: "/v1/runs", method: .get, headers: Self.headers(String(repeating: "x", count: 40))).status == .unauthorized)
            #expect(try await client.execute(uri: "/v1/runs", method: .get, headers: Self.headers(Self.read)).status == .ok)
            let forbidden = try await client.execute(uri: "/v1/runs", method: .post, headers: Self.headers(Self.read), body: Self.scenario())
            #expect(forbidden.status == .forbidden, "\(String(buffer: forbidden.body))")
            let audit = try Self.json(try await client.execute(uri: "/v1/audit", method: .get, headers: Self.headers(Self.read)))
            #expect((audit["entries"] as? [[String: Any]])?.contains { $0["status"] as? Int == 403 } == true, "\(audit)")
        }
    }

    @Test("a run through the API: running with each probe's results and the SLO, then succeeded; its report as JSON, Markdown, HTML and JUnit")
    func wholeRun() async throws {
        try await Self.withAgent { client, _ in
            let id = try await Self.submit(client, Self.scenario(duration: "1s", extra: "    slo: {objective: 90%}"))
            // While it runs: the probes so far.
            var sawProbes = false
            for _ in 0..<100 {
                let status = try Self.json(try await client.execute(uri: "/v1/runs/\(id)", method: .get, headers: Self.headers(Self.read)))
                if status["state"] as? String == "running", let probes = status["probes"] as? [[String: Any]], let web = probes.first,
                   (web["count"] as? Int ?? 0) >= 3, status["slo"] is [String: Any] {
                    #expect(web["probe"] as? String == "web" && web["p95"] is Double && web["latestLatency"] is Double, "\(web)")
                    sawProbes = true
                    break
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(sawProbes, "the running run's status carries its probes and SLO")
            let early = try await client.execute(uri: "/v1/runs/\(id)/report", method: .get, headers: Self.headers(Self.read))
            #expect(early.status == .conflict, "no report before the end")
            let status = try await Self.finished(client, id)
            #expect(status["state"] as? String == "succeeded" && status["exitCode"] as? Int == 0, "\(status)")
            #expect((status["faults"] as? [[String: Any]])?.first?["state"] as? String == "reverted")
            #expect((status["probes"] as? [[String: Any]])?.first?["count"] as? Int ?? 0 > 3, "the final status keeps the probes")
            for (format, type, marker) in [("json", "application/json", "\"exitCode\""), ("md", "text/markdown", "# Game day: agent-router"),
                                           ("html", "text/html", "<html"), ("junit", "application/xml", "<testsuite name=\"agent-router\"")] {
                let report = try await client.execute(uri: "/v1/runs/\(id)/report?format=\(format)", method: .get, headers: Self.headers(Self.read))
                #expect(report.status == .ok && report.headers[.contentType]?.hasPrefix(type) == true, "\(format): \(report.status)")
                #expect(String(buffer: report.body).contains(marker), "\(format): \(String(buffer: report.body).prefix(300))")
            }
            let bad = try await client.execute(uri: "/v1/runs/\(id)/report?format=pdf", method: .get, headers: Self.headers(Self.read))
            #expect(bad.status == .badRequest && String(buffer: bad.body).contains("json, md, html, junit"))
            // The stream of a run that is over: its events and one `end`.
            let events = String(buffer: try await client.execute(uri: "/v1/runs/\(id)/events?follow=false", method: .get, headers: Self.headers(Self.read)).body)
            #expect(events.components(separatedBy: "event: end\n").count == 2, "one end event: \(events)")
            #expect(events.contains("event: inject\n") && events.contains("event: revert\n"))
        }
    }

    @Test("abort from the API: aborted (exit 1), the fault reverted, the cause counted in faultline_aborts_total")
    func abort() async throws {
        try await Self.withAgent { client, _ in
            let id = try await Self.submit(client, Self.scenario(duration: "8s"))
            // Once the fault is in place.
            for _ in 0..<250 {
                let status = try Self.json(try await client.execute(uri: "/v1/runs/\(id)", method: .get, headers: Self.headers(Self.read)))
                if (status["faults"] as? [[String: Any]])?.first?["state"] as? String == "active" { break }
                try await Task.sleep(for: .milliseconds(20))
            }
            let aborted = try await client.execute(uri: "/v1/runs/\(id)/abort", method: .post, headers: Self.headers())
            #expect(aborted.status == .ok)
            let status = try await Self.finished(client, id)
            #expect(status["state"] as? String == "aborted" && status["exitCode"] as? Int == 1, "\(status)")
            #expect((status["faults"] as? [[String: Any]])?.first?["state"] as? String == "reverted")
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get, headers: Self.headers(Self.read)).body)
            #expect(metrics.contains("faultline_aborts_total{reason=\"controller\"} 1"), "\(metrics)")
            #expect(metrics.contains("faultline_runs_total{result=\"aborted\"} 1"))
        }
    }

    @Test("a lease not renewed aborts the run (cause lease)")
    func lease() async throws {
        try await Self.withAgent { client, _ in
            let id = try await Self.submit(client, Self.scenario(duration: "8s"), query: "?lease=1s")
            let status = try await Self.finished(client, id)
            #expect(status["state"] as? String == "aborted" && (status["reason"] as? String)?.contains("lease expired") == true, "\(status)")
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get, headers: Self.headers(Self.read)).body)
            #expect(metrics.contains("faultline_aborts_total{reason=\"lease\"} 1"), "\(metrics)")
        }
    }

    @Test("a fault whose revert fails: the run failed (exit 4), the fault revert-failed")
    func revertFails() async throws {
        try await Self.withAgent(scripts: ["burn": .init(revertFails: "device busy")]) { client, _ in
            let id = try await Self.submit(client, Self.scenario(duration: "100ms"))
            let status = try await Self.finished(client, id)
            #expect(status["state"] as? String == "failed" && status["exitCode"] as? Int == 4, "\(status)")
            #expect((status["faults"] as? [[String: Any]])?.first?["state"] as? String == "revert-failed")
        }
    }

    @Test("errors: 400 for a bad scenario (with positions) or a command probe not allowed; 404 unknown run or path; 405 with Allow; dry run plans only")
    func errors() async throws {
        try await Self.withAgent { client, _ in
            let invalid = try await client.execute(uri: "/v1/runs", method: .post, headers: Self.headers(), body: ByteBuffer(string: "kind: Nope\n"))
            #expect(invalid.status == .badRequest)
            let details = (try Self.json(invalid)["error"] as? [String: Any])?["details"] as? [[String: Any]]
            #expect(details?.isEmpty == false, "\(String(buffer: invalid.body))")
            let command = try await client.execute(uri: "/v1/runs", method: .post, headers: Self.headers(),
                                                   body: Self.scenario(probe: "{name: sh, command: {argv: [\"true\"]}}"))
            #expect(command.status == .badRequest && String(buffer: command.body).contains("--allow-command-probes"))
            #expect(try await client.execute(uri: "/v1/runs/feedbeef", method: .get, headers: Self.headers()).status == .notFound)
            #expect(try await client.execute(uri: "/v1/nothing", method: .get, headers: Self.headers()).status == .notFound)
            let wrong = try await client.execute(uri: "/v1/runs", method: .delete, headers: Self.headers())
            #expect(wrong.status == .methodNotAllowed && wrong.headers[.allow]?.contains("POST") == true)
            let dry = try await client.execute(uri: "/v1/runs?dryRun=true", method: .post, headers: Self.headers(), body: Self.scenario())
            #expect(dry.status == .ok, "\(String(buffer: dry.body))")
            let planned = try Self.json(dry)["plan"] as? [String: Any]
            #expect(planned != nil, "\(String(buffer: dry.body))")
            let runs = try Self.json(try await client.execute(uri: "/v1/runs", method: .get, headers: Self.headers()))
            #expect((runs["runs"] as? [Any])?.isEmpty == true, "a dry run starts nothing")
            let cron = try await client.execute(uri: "/v1/schedules", method: .post, headers: Self.headers(),
                                                body: ByteBuffer(string: #"{"scenario": "x", "cron": "61 * * * *"}"#))
            #expect(cron.status == .badRequest, "\(String(buffer: cron.body))")
        }
    }
}
