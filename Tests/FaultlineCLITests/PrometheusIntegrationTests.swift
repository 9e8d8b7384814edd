import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// Faultline and a real Prometheus server (Debian's 2.42, started by the test on loopback): the server scrapes a live
/// agent with its token as an operator's would, the dashboard's queries run on it, and a run's steady state comes from it.
@Suite(.serialized, .enabled(if: Privilege.isRoot && TestPrometheus.available, "needs root (runs pause real processes) and \(TestPrometheus.unavailable)"))
struct PrometheusIntegrationTests {
    static let token = "prometheus-scrape-token-\(UInt64.random(in: 0 ... .max))"

    @Test("a real Prometheus scrapes a live agent's /metrics with the bearer token: faultline_faults_active is 1 during a run and 0 after; every dashboard expression evaluates")
    func scrapesTheAgent() async throws {
        let directory = try makeTestDirectory("prom")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        try await withTestAgent(directory: directory, state: directory + "/state", token: Self.token) { agent in
            try await scrape(agent, directory: directory, sleepers: sleepers, target: target)
        }
    }

    func scrape(_ agent: TestAgent, directory: String, sleepers: TestSleepers, target: ProcessIdentity) async throws {
        let tokenFile = directory + "/scrape-token"
        try Self.token.write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let address = agent.url.replacingOccurrences(of: "http://", with: "")
        // As docs/observability.md shows it.
        let scrape = """
              - job_name: faultline
                scrape_interval: 1s
                authorization:
                  type: Bearer
                  credentials_file: \(tokenFile)
                static_configs: [{targets: ["\(address)"]}]
            """
        let server = try await TestPrometheus.start(scrapeConfigs: [scrape])
        defer { server.stop() }
        try await server.waitForValue(#"up{job="faultline"}"#) { $0 == 1 }
        try await server.waitForValue(#"sum(faultline_faults_active{job="faultline"})"#) { $0 == 0 }

        let scenario = agentScenario("scraped", faults: pauseFault("freeze", sleepers: sleepers, duration: "6s"))
        let created = try await agent.call(.POST, "/v1/runs", body: scenario)
        #expect(created.status == 201, "\(created.body)")
        let id = try #require(created.json["id"] as? String)
        let during = try await server.waitForValue(#"sum(faultline_faults_active{job="faultline"})"#, timeout: .seconds(6)) { $0 >= 1 }
        #expect(during == 1)
        #expect(sleepers.state(target) == "T")
        _ = try await agent.waitForRun(id, timeout: .seconds(20)) { ($0["state"] as? String) == "succeeded" }
        try await server.waitForValue(#"sum(faultline_faults_active{job="faultline"})"#, timeout: .seconds(6)) { $0 == 0 }
        try await server.waitForValue(#"sum(faultline_runs_total{job="faultline",result="succeeded"})"#) { $0 == 1 }
        #expect(sleepers.state(target) == "S")

        // Every query of the shipped dashboard, with Grafana's variables as Grafana fills them, on the same server.
        let data = try Data(contentsOf: TestPaths.root.appendingPathComponent("deploy/grafana/faultline-dashboard.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        try #require(expressions.count >= 10)
        for expression in expressions {
            let query = expression.replacingOccurrences(of: "$instance", with: ".*").replacingOccurrences(of: "$__range", with: "1h")
            #expect(!query.contains("$"), "a Grafana variable the test does not fill: \(expression)")
            let answer = try await server.query(query)
            #expect(answer["status"] as? String == "success", "\(expression): \(answer)")
            #expect(answer["warnings"] == nil, "\(expression): \(answer)")
        }
        // The panels that count runs and active faults have data from this agent.
        #expect(try await server.value(#"sum(faultline_faults_active{instance=~".*"})"#) == 0)
        let runs = try await server.value(#"sum(increase(faultline_runs_total{instance=~".*"}[1h]))"#)
        #expect(runs != nil, "the runs panel has data")
        // The dashboard's instance variable (label_values(faultline_runs_total, instance)) lists this agent.
        let labels = try await SubprocessRunner().run(["curl", "-sS", "-G", "--data-urlencode", "match[]=faultline_runs_total",
                                                        "\(server.url)/api/v1/label/instance/values"])
        #expect(labels.standardOutput.contains("\"\(address)\""), "\(labels.standardOutput)")
    }

    @Test("a run whose steady state comes from Prometheus holds while the fault does not hurt the service, and deviates when it does")
    func steadyStateFromPrometheus() async throws {
        let directory = try makeTestDirectory("prom")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        // The service's worker (its pause breaks the service, as the exporter sees it) and a replica (its pause does not).
        let worker = try sleepers.start(["301"])
        let replica = try sleepers.start(["302"])
        let exporter = try await TestExporter.start(worker: worker.pid)
        defer { exporter.stop() }
        let server = try await TestPrometheus.start(scrapeConfigs: [exporter.scrapeConfig])
        defer { server.stop() }
        try await server.waitForValue(#"sum(rate(http_requests_total{service="checkout"}[1m]))"#) { $0 > 0 }

        func scenario(_ name: String, pausing marker: String) -> String {
            """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: \(name)}
            spec:
              maxDuration: 40s
              steadyState:
                probes:
                  - name: error-ratio
                    interval: 500ms
                    prometheus:
                      url: \(server.url)
                      query: >-
                        sum(rate(http_requests_total{service="checkout",code=~"5.."}[1m]))
                        / sum(rate(http_requests_total{service="checkout"}[1m]))
                      expect: {below: 0.01}
                  - name: p99
                    interval: 500ms
                    prometheus:
                      url: \(server.url)
                      query: histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="checkout"}[1m])))
                      expect: {below: 0.5}
                slo: {objective: 90%}
                abortWhen: {consecutiveFailures: 3}
              faults:
                - name: freeze
                  type: pause-process
                  start: 1s
                  duration: 5s
                  match: {cmdline: '^\(sleepers.program) \(marker)$'}
            """
        }
        func run(_ name: String, _ text: String) async throws -> (exit: Int32, output: String, report: [String: Any]) {
            let file = "\(directory)/\(name).yaml"
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            let log = "\(directory)/\(name).log"
            let child = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--state-dir", directory + "/state",
                                                "--report", "\(directory)/\(name)"], table: ProcessTable(), output: log)
            let exit = await ChildProcess.waitForExit(child.pid)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)/report.json"))
            return (exit, output, try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]))
        }

        let held = try await run("replica-pause", scenario("replica-pause", pausing: "302"))
        #expect(held.exit == 0, "\(held.output)")
        #expect(held.report["state"] as? String == "succeeded", "\(held.report)")
        #expect(sleepers.state(replica) == "S" && sleepers.state(worker) == "S")

        let broken = try await run("worker-pause", scenario("worker-pause", pausing: "301"))
        #expect(broken.exit == 1, "\(broken.output)")
        #expect(broken.output.contains("abort"), "\(broken.output)")
        #expect(sleepers.state(worker) == "S", "the worker runs again")
        print("held:\n\(held.output)\nbroken:\n\(broken.output)")
    }
}
