@testable import FaultlineAgent
@testable import FaultlineCLI
import FaultlineCore
import FaultlineJournal
import Foundation
import Prometheus
import Testing

/// The controller's and the agent's pure pieces: inventories, exit codes, SSE parsing, token compare, metrics text.
struct ControllerUnitTests {
    @Test("an inventory gives names and URLs, skips comments and repeats, and names a bad line")
    func inventory() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("inventory-\(UInt32.random(in: 0 ... .max)).txt").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "# game day fleet\nweb-1 http://10.0.0.5:7465\n\n10.0.0.6:7465   # bare host:port\nweb-1b http://10.0.0.5:7465/\n".write(toFile: file, atomically: true, encoding: .utf8)
        let options = try ControllerOptions.parse(["--agents", file, "--agent", "https://agent.example:9000"])
        let endpoints = try options.endpoints()
        #expect(endpoints == [
            AgentEndpoint(name: "agent.example:9000", url: "https://agent.example:9000"),
            AgentEndpoint(name: "web-1", url: "http://10.0.0.5:7465"),
            AgentEndpoint(name: "10.0.0.6:7465", url: "http://10.0.0.6:7465"),
        ])
        try "web-1 http://10.0.0.5:7465 extra\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: FaultlineError.self) { try ControllerOptions.parse(["--agents", file]).endpoints() }
        let broken = try ControllerOptions.parse(["--agents", file])
        do throws(FaultlineError) {
            _ = try broken.endpoints()
        } catch {
            #expect(error.message == "\(file):1: expected 'URL' or 'NAME URL', got 'web-1 http://10.0.0.5:7465 extra'")
        }
        #expect(throws: FaultlineError.self) { try ControllerOptions.parse(["--agent", "ftp://x"]).endpoints() }
    }

    @Test("dns:NAME:PORT finds one agent per address of the name, over https by default, checked for the name")
    func dnsDiscovery() throws {
        #expect(try AgentDiscovery.parse("dns:faultline-agents.faultline.svc.cluster.local:7465")
            == AgentDiscovery(scheme: "https", host: "faultline-agents.faultline.svc.cluster.local", port: 7465))
        #expect(try AgentDiscovery.parse("dns:http://agents.local:80/") == AgentDiscovery(scheme: "http", host: "agents.local", port: 80))
        for bad in ["dns:agents", "dns:agents:0", "dns:agents:70000", "dns::7465", "dns:bad_name:7465", "dns:-a.b:7465", "dns:a..b:7465",
                    "dns:ftp://a:1", "dns:\(String(repeating: "a", count: 64)).b:7465", "dns:a b:7465"] {
            #expect(throws: FaultlineError.self, "\(bad)") { try AgentDiscovery.parse(bad) }
        }
        do throws(FaultlineError) {
            _ = try AgentDiscovery.parse("dns:agents")
        } catch {
            #expect(error.message == "'dns:agents': expected dns:NAME:PORT (e.g. dns:faultline-agents.faultline.svc.cluster.local:7465)")
        }
        // localhost resolves through /etc/hosts: one agent per address, named by it, the URL keeps the name.
        let endpoints = try ControllerOptions.parse(["--agents", "dns:localhost:7465"]).endpoints()
        #expect(!endpoints.isEmpty)
        #expect(endpoints.allSatisfy { $0.url == "https://localhost:7465" && $0.address != nil && $0.isLoopback }, "\(endpoints)")
        #expect(endpoints.contains { $0.name == "127.0.0.1:7465" && $0.dnsOverride == ["localhost": "127.0.0.1"] }, "\(endpoints)")
    }

    @Test("--keep-runs and --keep-for: defaults 500 and 14 days; 0 days is no age bound; bad values are usage errors")
    func retentionOptions() throws {
        #expect(try RetentionOptions.parse([]).retention == .standard)
        let custom = try RetentionOptions.parse(["--keep-runs", "20", "--keep-for", "0"]).retention
        #expect(custom.keepRuns == 20 && custom.keepFor == nil)
        #expect(try RetentionOptions.parse(["--keep-for", "12h"]).retention.keepFor?.seconds == 43_200)
        for bad in [["--keep-runs", "0"], ["--keep-for", "two weeks"], ["--keep-for", "-3d"]] {
            #expect(throws: (any Error).self, "\(bad)") { try RetentionOptions.parse(bad) }
        }
    }

    @Test("the worst exit code wins: 4 > 3 > 2 > 130 > 1 > 0")
    func worst() {
        #expect(worstExit([]) == 0)
        #expect(worstExit([0, 1, 0]) == 1)
        #expect(worstExit([1, 130]) == 130)
        #expect(worstExit([130, 2]) == 2)
        #expect(worstExit([3, 2, 1]) == 3)
        #expect(worstExit([0, 4, 3]) == 4)
    }

    @Test("server-sent events split across reads come out whole; keep-alive comments show nothing")
    func eventStream() {
        var parser = EventStreamParser()
        #expect(parser.feed("id: 1\nevent: inject\nda").isEmpty)
        #expect(parser.feed("ta: {\"a\":1}\n\n: keep-alive\n\nid: 2\ndata: x\ndata: y\n\n") == [
            .init(event: "inject", data: "{\"a\":1}", id: "1"),
            .init(event: "message", data: "x\ny", id: "2"),
        ])
    }

    @Test("a stream's messages are read once into kinds: a run's event by name, the closing end or status; the end shows the probes")
    func streamKinds() {
        var parser = EventStreamParser()
        let status = #"{"id":"r1","scenario":"s","state":"succeeded","createdAt":"2026-12-02T10:00:00Z","exitCode":0,"faults":[],"#
            + #""probes":[{"probe":"web","count":12,"good":11,"bad":1,"latestOK":true,"latestLatency":0.01,"latestDetail":"status 200","p95":0.25}],"#
            + #""slo":{"objective":90,"good":11,"total":12,"budgetUsed":0.83,"window":60}}"#
        let messages = parser.feed("id: 1\nevent: inject\ndata: {}\n\nid: 2\nevent: brand-new\ndata: {}\n\nevent: end\ndata: \(status)\n\n")
        #expect(messages.map(\.kind) == [.event(.inject), .event(.other), .end])
        let end = EventsCommand.render(messages[2])
        #expect(end == "-- end: succeeded (exit 0); web 12 results, 1 bad, p95 250 ms; SLO 83% of the budget used", "\(end)")
    }

    @Test("tables align every column but the last")
    func tables() {
        #expect(table(["A", "LONGER", "NOTE"], [["x", "y", "free text"], ["wide-cell", "z", ""]]) ==
            "A          LONGER  NOTE\nx          y       free text\nwide-cell  z       \n")
    }

    @Test("the token compare needs every byte and the same length")
    func tokenCompare() {
        let token = Array("s3cret-token".utf8)
        #expect(ConstantTime.equal(token, token))
        #expect(!ConstantTime.equal(Array("s3cret-tokem".utf8), token))
        #expect(!ConstantTime.equal(Array("s3cret".utf8), token))
        #expect(!ConstantTime.equal(Array("s3cret-token-and-more".utf8), token))
        #expect(!ConstantTime.equal([], token))
    }

    @Test("a token followed by 256·k more bytes is not the token: the whole length difference counts")
    func tokenCompareCountsTheWholeLength() {
        let token = Array("0123456789abcdef0123456789abcdef".utf8)
        for extra in [256, 512, 65_536] {
            #expect(!ConstantTime.equal(token + [UInt8](repeating: 0, count: extra), token), "\(extra) zero bytes more")
            #expect(!ConstantTime.equal(token + [UInt8](repeating: UInt8(ascii: "x"), count: extra), token), "\(extra) bytes more")
        }
    }

    @Test("the Bearer scheme is named in any case (RFC 7235); another scheme or no token is none")
    func bearerSchemeInAnyCase() {
        let token = Array("s3cret-token".utf8)
        for header in ["Bearer s3cret-token", "bearer s3cret-token", "BEARER s3cret-token", "bEaReR  s3cret-token"] {
            #expect(BearerScheme.token(in: header) == token, "\(header)")
        }
        for header in ["Basic czNjcmV0", "Bearers3cret-token", "Bearer ", "Bearer", "", "Token s3cret-token"] {
            #expect(BearerScheme.token(in: header) == nil, "\(header)")
        }
    }

    @Test("global options work before the command too: they move after its name; nothing else moves")
    func globalOptionsBeforeTheCommand() {
        #expect(Faultline.movingGlobalOptions(["--agent", "http://10.0.0.5:7465", "--state-dir=/s", "list", "--json"])
                == ["list", "--agent", "http://10.0.0.5:7465", "--state-dir=/s", "--json"])
        #expect(Faultline.movingGlobalOptions(["list", "--agent", "u"]) == ["list", "--agent", "u"])
        #expect(Faultline.movingGlobalOptions(["--version"]) == ["--version"])
        #expect(Faultline.movingGlobalOptions(["--agent"]) == ["--agent"], "a value missing: left for the parser to refuse")
        #expect(Faultline.movingGlobalOptions(["--agent", "u", "--help"]) == ["--agent", "u", "--help"], "no command: left as it is")
        #expect(Faultline.movingGlobalOptions(["--token-file", "t", "--ca-file", "ca.pem", "audit", "--limit", "5"])
                == ["audit", "--token-file", "t", "--ca-file", "ca.pem", "--limit", "5"])
    }

    @Test("a non-loopback listener needs a token of at least 32 characters; loopback may keep a shorter one (or none)")
    func tokenLengthByListener() throws {
        let long = String(repeating: "k", count: AgentConfiguration.minimumTokenLength)
        for host in ["0.0.0.0", "10.213.0.5", "::", "192.168.1.2"] {
            try AgentConfiguration.checkToken(long, host: host)
            do throws(FaultlineError) {
                try AgentConfiguration.checkToken(String(long.dropLast()), host: host)
                Issue.record("a 31-character token on \(host) was accepted")
            } catch {
                #expect(error.code == .usage)
                #expect(error.message == "refusing to listen on \(host) with a token of 31 characters: use at least 32, e.g. from 'openssl rand -hex 32'")
            }
            #expect(throws: FaultlineError.self) { try AgentConfiguration.checkToken(nil, host: host) }
        }
        for host in ["127.0.0.1", "::1", "localhost"] {
            try AgentConfiguration.checkToken("short", host: host)
            try AgentConfiguration.checkToken(nil, host: host)
        }
    }

    @Test("listen addresses: host:port, [v6]:port, a bare port (loopback); a missing host or a bad port is refused")
    func listen() throws {
        let any = try AgentConfiguration.parseListen("0.0.0.0:7465")
        #expect(any.host == "0.0.0.0" && any.port == 7465)
        let v6 = try AgentConfiguration.parseListen("[::1]:0")
        #expect(v6.host == "::1" && v6.port == 0)
        let bare = try AgentConfiguration.parseListen("7465")
        #expect(bare.host == "127.0.0.1" && bare.port == 7465)
        #expect(throws: FaultlineError.self) { try AgentConfiguration.parseListen(":8080") }
        #expect(throws: FaultlineError.self) { try AgentConfiguration.parseListen("localhost:http") }
        #expect(throws: FaultlineError.self) { try AgentConfiguration.parseListen("127.0.0.1:70000") }
        #expect(AgentConfiguration.isLoopback("127.0.0.1") && AgentConfiguration.isLoopback("::1") && !AgentConfiguration.isLoopback("0.0.0.0"))
    }

    @Test("API times are RFC 3339 with milliseconds, and read back to the millisecond")
    func apiDates() throws {
        #expect(APIDate.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        let date = Date(timeIntervalSince1970: 1_795_815_524.250_9)
        #expect(APIDate.format(date) == "2026-11-27T21:38:44.250Z")
        #expect(APIDate.format(Date(timeIntervalSince1970: 951_782_400.007)) == "2000-02-29T00:00:00.007Z")
        let back = try #require(APIDate.parse(APIDate.format(date)))
        #expect(abs(back.timeIntervalSince1970 - 1_795_815_524.250) < 0.000_5)
        #expect(APIDate.parse("2026-11-27T21:38:44Z") != nil)
        #expect(APIDate.parse("yesterday") == nil)
    }

    @Test("metrics: cumulative histogram buckets, escaped label values, every fault type present")
    func metrics() {
        let metrics = AgentMetrics()
        metrics.injected("drop", ok: true, becameActive: true)
        #expect(metrics.exposition().contains("faultline_faults_active{type=\"drop\"} 1.0\n"))
        metrics.reverted("drop", ok: true, seconds: 0.02, wasActive: true)
        metrics.probed("web \"main\"\nx", ok: false, latency: 0.3)
        metrics.ended(.aborted)
        metrics.aborted(.lease)
        let text = metrics.exposition()
        // swift-prometheus writes a gauge's value as a Double: 0.0 where the hand-written text had 0.
        #expect(text.contains("faultline_faults_active{type=\"drop\"} 0.0\n"))
        #expect(text.contains("faultline_faults_active{type=\"memory-stress\"} 0.0\n"))
        #expect(text.contains("faultline_fault_injections_total{type=\"drop\",result=\"success\"} 1\n"))
        #expect(text.contains("faultline_fault_injections_total{type=\"latency\",result=\"failure\"} 0\n"))
        #expect(text.contains("faultline_runs_total{result=\"succeeded\"} 0\n"))
        #expect(text.contains("faultline_revert_duration_seconds_bucket{le=\"0.01\"} 0\n"))
        #expect(text.contains("faultline_revert_duration_seconds_bucket{le=\"0.025\"} 1\n"))
        #expect(text.contains("faultline_revert_duration_seconds_bucket{le=\"+Inf\"} 1\n"))
        #expect(text.contains("faultline_revert_duration_seconds_sum 0.02\n"))
        #expect(text.contains("faultline_probe_results_total{probe=\"web \\\"main\\\"\\nx\",result=\"failed\"} 1\n"))
        #expect(text.contains("faultline_probe_latency_seconds_bucket{probe=\"web \\\"main\\\"\\nx\",le=\"0.25\"} 0\n"))
        #expect(text.contains("faultline_aborts_total{reason=\"lease\"} 1\n"))
        #expect(text.contains("# TYPE faultline_revert_duration_seconds histogram\n"))
        for name in ["faultline_faults_active", "faultline_fault_injections_total", "faultline_reverts_total", "faultline_revert_duration_seconds",
                     "faultline_probe_results_total", "faultline_probe_latency_seconds", "faultline_runs_total", "faultline_aborts_total"] {
            #expect(text.contains("# HELP \(name) "), "HELP line of \(name)")
        }
    }

    @Test("metrics: each agent has a registry of its own; faults_active never goes below 0")
    func metricsPerAgent() {
        let first = AgentMetrics(), second = AgentMetrics()
        first.injected("drop", ok: true, becameActive: true)
        first.probed("web", ok: true, latency: 0.01)
        #expect(first.exposition().contains("faultline_faults_active{type=\"drop\"} 1.0\n"))
        #expect(second.exposition().contains("faultline_faults_active{type=\"drop\"} 0.0\n"))
        #expect(!second.exposition().contains("faultline_probe_results_total{probe=\"web\""))
        second.reverted("drop", ok: false, seconds: nil, wasActive: true)
        #expect(second.exposition().contains("faultline_faults_active{type=\"drop\"} 0.0\n"))
        #expect(second.exposition().contains("faultline_reverts_total{type=\"drop\",result=\"failure\"} 1\n"))
        #expect(second.exposition().contains("faultline_revert_duration_seconds_count 0\n"))
    }

    @Test("metrics that libraries record through swift-metrics get Prometheus names and a HELP line")
    func libraryMetrics() {
        let registry = PrometheusCollectorRegistry()
        let factory = LibraryMetricsFactory(registry: registry)
        let dimensions = [("http.route", "/v1/runs"), ("http.request.method", "POST"), ("http.response.status_code", "201")]
        factory.makeCounter(label: "hb.requests", dimensions: dimensions).increment(by: 2)
        factory.makeTimer(label: "http.server.request.duration", dimensions: dimensions).recordNanoseconds(30_000_000)
        factory.makeMeter(label: "http.server.active_requests", dimensions: [("http.request.method", "GET")]).set(Int64(1))
        factory.makeCounter(label: "some.library.2xx", dimensions: []).increment(by: 1)
        let text = registry.emitToString()
        #expect(text.contains("# HELP hb_requests_total HTTP requests answered"))
        #expect(text.contains("# TYPE hb_requests_total counter\n"))
        #expect(text.contains("hb_requests_total{http_route=\"/v1/runs\",http_request_method=\"POST\",http_response_status_code=\"201\"} 2\n"))
        #expect(text.contains("# TYPE http_server_request_duration_seconds histogram\n"))
        #expect(text.contains("http_server_request_duration_seconds_bucket{http_route=\"/v1/runs\",http_request_method=\"POST\",http_response_status_code=\"201\",le=\"0.05\"} 1\n"))
        #expect(text.contains("# TYPE http_server_active_requests gauge\n"))
        #expect(text.contains("http_server_active_requests{http_request_method=\"GET\"} 1.0\n"))
        #expect(text.contains("# HELP some_library_2xx_total Recorded through swift-metrics"))
        #expect(LibraryMetricsFactory.prometheusName("9.lives:x", colon: false) == "__lives_x")
    }
}
