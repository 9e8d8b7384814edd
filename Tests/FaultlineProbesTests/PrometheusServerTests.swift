@testable import FaultlineProbes
import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// The prometheus probe against a real Prometheus server (Debian's 2.42) started by the test on loopback, scraping
/// itself and a small exporter of a checkout service's series every second.
@Suite(.serialized, .enabled(if: TestPrometheus.available, "\(TestPrometheus.unavailable)"))
struct PrometheusServerTests {
    func probe(_ url: String, _ query: String, _ expect: PrometheusCheck.Expectation, auth: PrometheusAuth? = nil,
               timeout: TimeSpan = .seconds(2)) -> Probe {
        Probe(name: try! ResourceName(parsing: "prom"), check: .prometheus(PrometheusCheck(url: url, query: query, timeout: timeout, expect: expect, auth: auth)))
    }

    func check(_ url: String, _ query: String, _ expect: PrometheusCheck.Expectation, auth: PrometheusAuth? = nil) async -> ProbeOutcome {
        await ProbeExecutor().checkHere(probe(url, query, expect, auth: auth))
    }

    /// A server and an exporter, both stopped and removed after `body`, also when it fails.
    func withServer(_ body: (TestPrometheus, TestExporter) async throws -> Void) async throws {
        let exporter = try await TestExporter.start()
        defer { exporter.stop() }
        let server = try await TestPrometheus.start(scrapeConfigs: [exporter.scrapeConfig])
        defer { server.stop() }
        // A rate needs two scrapes of the exporter in its window.
        try await server.waitForValue(#"sum(rate(http_requests_total{service="checkout"}[5s]))"#) { $0 > 0 }
        try await body(server, exporter)
    }

    @Test("equals, above and below against real series: up, sum(up), the rate of a scraped counter; scalars; +Inf")
    func boundsOnRealSeries() async throws {
        try await withServer { server, _ in
            let up = await check(server.url, #"up{job="self"}"#, .equals(1))
            #expect(up.ok && up.detail == "value 1", "\(up)")
            #expect(await check(server.url, "sum(up)", .equals(2)).ok, "both targets are up")
            #expect(await check(server.url + "/", "sum(up)", .above(1.5)).ok, "a base URL with a trailing slash")
            let notBelow = await check(server.url, "sum(up)", .below(2))
            #expect(!notBelow.ok && notBelow.detail == "value 2", "\(notBelow)")
            // The exporter serves 20 requests/s; a young series' rate is extrapolated from few samples at first.
            try await server.waitForValue(#"sum(rate(http_requests_total{service="checkout"}[5s]))"#) { $0 > 15 }
            let rate = await check(server.url, #"sum(rate(http_requests_total{service="checkout"}[5s]))"#, .above(10))
            #expect(rate.ok, "the exporter serves 20 requests/s: \(rate)")
            #expect(await check(server.url, #"sum(rate(http_requests_total{service="checkout"}[5s])) < bool 30"#, .equals(1)).ok)
            #expect(await check(server.url, "scalar(sum(up)) * 2 + 1", .equals(5)).ok, "a scalar answer, and '+' reaches the server as '+'")
            #expect(await check(server.url, "1/0", .above(1e308)).ok, "+Inf is a value")
            #expect(!(await check(server.url, "1/0", .below(5)).ok))
        }
    }

    @Test("no data, several series, NaN, a range vector, a string and a PromQL syntax error are bad results that say why")
    func badAnswers() async throws {
        try await withServer { server, _ in
            let none = await check(server.url, #"up{job="nope"}"#, .equals(1))
            #expect(!none.ok && none.detail == "the query returned no data (no series matched)", "\(none)")
            let several = await check(server.url, #"http_requests_total{service="checkout"}"#, .above(0))
            #expect(!several.ok && several.detail.hasPrefix("the query returned 2 series ("), "\(several)")
            #expect(several.detail.hasSuffix("aggregate it (sum(...)) to one"))
            let nan = await check(server.url, #"sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total{code="500"}[5s]))"#, .below(1))
            #expect(!nan.ok && nan.detail.hasPrefix("the query gave NaN"), "\(nan)")
            let matrix = await check(server.url, "up[5s]", .equals(1))
            #expect(!matrix.ok && matrix.detail.contains("range vector (matrix)"), "\(matrix)")
            let string = await check(server.url, #""hello""#, .equals(1))
            #expect(!string.ok && string.detail == "the query gives a string, not a number", "\(string)")
            let syntax = await check(server.url, "sum(up", .equals(1))
            #expect(!syntax.ok && syntax.detail.hasPrefix("Prometheus refused the query (bad_data): "), "\(syntax)")
            #expect(syntax.detail.contains("parse error: unclosed left parenthesis"), "the message names Prometheus's error: \(syntax)")
        }
    }

    @Test("a server that is down is a bad result at once, not after the probe's timeout")
    func serverDown() async throws {
        let port = try freeLoopbackPort()
        let probe = probe("http://127.0.0.1:\(port)", "up", .equals(1), timeout: .seconds(5))
        let started = ContinuousClock.now
        let outcome = await ProbeExecutor().checkHere(probe)
        let elapsed = ContinuousClock.now - started
        #expect(!outcome.ok)
        #expect(outcome.detail == "connection refused", "\(outcome)")
        #expect(elapsed < .seconds(1), "refused after \(elapsed), with a 5 s timeout")
    }

    @Test("basic auth against a server that asks for it: the password from the environment or a file, never the scenario")
    func basicAuth() async throws {
        let server = try await TestPrometheus.start(basicAuth: (user: "faultline", password: "correct horse"))
        defer { server.stop() }
        let without = await check(server.url, "sum(up)", .equals(1))
        #expect(!without.ok && without.detail.hasPrefix("status 401"), "\(without)")
        let file = server.directory + "/password"
        try "correct horse\n".write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = await check(server.url, "sum(up)", .equals(1), auth: .basic(username: "faultline", password: .file(file)))
        #expect(fromFile.ok, "\(fromFile)")
        try "wrong\n".write(toFile: file, atomically: true, encoding: .utf8)
        let wrong = await check(server.url, "sum(up)", .equals(1), auth: .basic(username: "faultline", password: .file(file)))
        #expect(!wrong.ok && wrong.detail.hasPrefix("status 401"), "read at each check: \(wrong)")
        let unset = await check(server.url, "sum(up)", .equals(1), auth: .basic(username: "faultline", password: .environment("FAULTLINE_TEST_UNSET_VARIABLE")))
        #expect(!unset.ok && unset.detail == "the secret's environment variable FAULTLINE_TEST_UNSET_VARIABLE is not set", "\(unset)")
    }

    @Test("a bearer token from a file reaches the server (behind a proxy that checks it, as Prometheus itself does not)")
    func bearerToken() async throws {
        let server = try await TestPrometheus.start()
        defer { server.stop() }
        let directory = server.directory
        let port = try freeLoopbackPort()
        let proxy = """
            import http.server, sys, urllib.request
            port, upstream = int(sys.argv[1]), sys.argv[2]
            class Handler(http.server.BaseHTTPRequestHandler):
                def log_message(self, *args):
                    pass
                def do_GET(self):
                    if self.headers.get("Authorization") != "Bearer t0ken-for-prometheus":
                        self.send_response(401); self.send_header("Content-Length", "0"); self.end_headers(); return
                    body = urllib.request.urlopen(upstream + self.path).read()
                    self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
                    self.wfile.write(body)
            http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
            """
        try proxy.write(toFile: directory + "/proxy.py", atomically: true, encoding: .utf8)
        let child = try ChildProcess.spawn(["/usr/bin/python3", directory + "/proxy.py", "\(port)", server.url], table: ProcessTable(),
                                           output: directory + "/proxy.log")
        defer {
            _ = try? ProcessSignaller().send(.kill, to: child)
            _ = ChildProcess.reap(child.pid)
        }
        let tokenFile = directory + "/token"
        try "t0ken-for-prometheus\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        var outcome = ProbeOutcome(ok: false, latency: 0, detail: "not run")
        for _ in 0..<50 {
            outcome = await check("http://127.0.0.1:\(port)", "sum(up)", .equals(1), auth: .bearer(.file(tokenFile)))
            if outcome.ok || outcome.detail != "connection refused" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(outcome.ok, "\(outcome)")
        let without = await check("http://127.0.0.1:\(port)", "sum(up)", .equals(1))
        #expect(!without.ok && without.detail.hasPrefix("status 401"), "\(without)")
    }

    @Test("the example scenario's SLO probes (error ratio, latency quantile from a histogram) hold on healthy series and break on broken ones")
    func exampleScenarioProbes() async throws {
        let text = try String(contentsOf: TestPaths.root.appendingPathComponent("scenarios/checkout-db-latency.yaml"), encoding: .utf8)
        let scenario = try ScenarioLoader.load(yaml: text, file: "checkout-db-latency.yaml")
        let probes = (scenario.spec.steadyState?.probes ?? []).filter { $0.check.kind == "prometheus" }
        try #require(probes.count >= 2, "the example has an error-ratio and a latency-quantile probe")
        try await withServer { server, exporter in
            func pointed(_ probe: Probe) -> Probe {
                guard case .prometheus(var check) = probe.check else { return probe }
                check.url = server.url
                var copy = probe
                copy.check = .prometheus(check)
                return copy
            }
            // The [1m] windows need a few scrapes before the ratio and the quantile have data.
            var healthy: [ProbeOutcome] = []
            for _ in 0..<40 {
                healthy = await probes.asyncMap { await ProbeExecutor().checkHere(pointed($0)) }
                if healthy.allSatisfy({ $0.ok }) { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(healthy.allSatisfy { $0.ok }, "healthy: \(healthy)")
            try exporter.setBroken(true)
            var broken: [ProbeOutcome] = []
            for _ in 0..<40 {
                broken = await probes.asyncMap { await ProbeExecutor().checkHere(pointed($0)) }
                if broken.allSatisfy({ !$0.ok }) { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(broken.allSatisfy { !$0.ok && $0.detail.hasPrefix("value ") }, "broken: \(broken)")
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var result: [T] = []
        for element in self { result.append(await transform(element)) }
        return result
    }
}
