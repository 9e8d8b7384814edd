import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// Traces to a real OTLP receiver (HTTP and gRPC) and load at a set rate, end to end (in RunEndToEndTests' suite, so
/// they share its namespaces and never run beside its other tests).
extension RunEndToEndTests {
    /// The Python with the OTLP packages (`scripts/test-python` installs them), or nil with the reason.
    static let otlpPython: (path: String?, reason: String) = {
        let python = TestPaths.root.appendingPathComponent(".build-tools/venv/bin/python3").path
        guard FileManager.default.isExecutableFile(atPath: python) else { return (nil, "no \(python): run scripts/test-python (make test does)") }
        // The packages' files, found without starting Python: lib/pythonX.Y/site-packages/...
        let lib = TestPaths.root.appendingPathComponent(".build-tools/venv/lib").path
        let sitePackages = ((try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []).map { "\(lib)/\($0)/site-packages" }
        let needed = ["opentelemetry/proto/collector/trace/v1/trace_service_pb2_grpc.py", "grpc/__init__.py"]
        guard sitePackages.contains(where: { site in needed.allSatisfy { FileManager.default.fileExists(atPath: "\(site)/\($0)") } }) else {
            return (nil, "\(python) lacks opentelemetry-proto or grpcio: run scripts/test-python (make test does)")
        }
        return (python, "")
    }()

    /// An OTLP receiver: traces over OTLP/HTTP (protobuf or JSON) on `port` at /v1/traces and over OTLP/gRPC on
    /// `port + 1`, one JSON line per span in `output`; GET requests elsewhere on `port` are "the service", logged with
    /// their `traceparent` header (503 under /fail). Anything under /hang never answers.
    static let otlpReceiver = """
        import http.server, json, sys, threading, time
        from concurrent import futures
        import grpc
        from google.protobuf.json_format import Parse
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
        port, output = int(sys.argv[1]), sys.argv[2]
        lock = threading.Lock()
        def write(record):
            with lock, open(output, "a") as f:
                f.write(json.dumps(record) + "\\n")
        def spans(request, transport):
            for resource in request.resource_spans:
                service = {a.key: a.value.string_value for a in resource.resource.attributes}.get("service.name")
                for scope in resource.scope_spans:
                    for s in scope.spans:
                        attributes = {}
                        for a in s.attributes:
                            kind = a.value.WhichOneof("value")
                            attributes[a.key] = getattr(a.value, kind) if kind else None
                        write({"transport": transport, "service": service, "trace": s.trace_id.hex(), "span": s.span_id.hex(),
                               "parent": s.parent_span_id.hex(), "name": s.name, "kind": s.kind, "start": s.start_time_unix_nano,
                               "end": s.end_time_unix_nano, "status": s.status.code, "attributes": attributes,
                               "events": [e.name for e in s.events]})
        class Collector(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                spans(request, "grpc")
                return trace_service_pb2.ExportTraceServiceResponse()
        collector = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), collector)
        collector.add_insecure_port("127.0.0.1:%d" % (port + 1))
        collector.start()
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.startswith("/hang"):
                    time.sleep(60)
                    return
                request = trace_service_pb2.ExportTraceServiceRequest()
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    Parse(body.decode(), request)
                    spans(request, "http/json")
                else:
                    request.ParseFromString(body)
                    spans(request, "http/protobuf" if self.path == "/v1/traces" else "wrong path " + self.path)
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            def do_GET(self):
                write({"request": self.path, "traceparent": self.headers.get("traceparent")})
                self.send_response(503 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
        """

    static func lines(_ file: String) -> [[String: Any]] {
        ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    @Test("a run's spans reach a real OTLP receiver (HTTP and gRPC) with their parent links; probe requests carry traceparent; the report lists the traces of failing requests",
          .enabled(if: otlpPython.path != nil, "\(otlpPython.reason)"),
          arguments: ["http/protobuf", "grpc"])
    func tracesReachAnOTLPReceiver(_ transport: String) async throws {
        let python = try #require(Self.otlpPython.path)
        try await withSetup { setup in
            let received = setup.directory + "/otlp.log"
            let (receiver, port) = try await setup.startServer("otlp", Self.otlpReceiver, output: received, python: python)
            defer { setup.stop(receiver) }
            let steadyState = """
                  steadyState:
                    probes:
                      - name: web
                        interval: 200ms
                        http: {url: "http://\(TestNetwork.addressB):8080/", timeout: 300ms}
                      - name: service
                        interval: 300ms
                        http: {url: "http://127.0.0.1:\(port)/checkout", headers: {traceparent: "00-not-the-callers-0"}}
                    slo: {objective: 90%}
                    abortWhen: {consecutiveFailures: 3}
                """
            let file = try setup.file("traced", faults: "    - {name: cut, type: drop, start: 1s, to: {hosts: [\(TestNetwork.addressB)], ports: [8080], protocol: tcp}}",
                                      steadyState: steadyState)
            let endpoint = transport == "grpc" ? "http://127.0.0.1:\(port + 1)" : "http://127.0.0.1:\(port)"
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out", "--otlp-endpoint", endpoint],
                                             prefix: ["/usr/bin/env", "OTEL_EXPORTER_OTLP_PROTOCOL=\(transport)", TestPaths.faultline])
            #expect(result.exit == 1, "\(result.output)")
            let report = try report(setup.directory + "/out")
            let all = Self.lines(received)
            let spans = all.filter { $0["name"] != nil }
            #expect(spans.allSatisfy { $0["transport"] as? String == transport && $0["service"] as? String == "faultline" }, "\(spans.prefix(3))")

            // One run span at the root; the fault and every probe request are its children, in its trace.
            let runs = spans.filter { $0["name"] as? String == "run traced" }
            try #require(runs.count == 1, "\(spans.map { $0["name"] ?? "" })")
            let run = runs[0]
            let trace = try #require(run["trace"] as? String), runID = try #require(run["span"] as? String)
            #expect(run["parent"] as? String == "")
            #expect(run["status"] as? Int == 2, "an aborted run is an error")
            let runAttributes = run["attributes"] as? [String: Any] ?? [:]
            #expect(runAttributes["faultline.scenario"] as? String == "traced")
            #expect(runAttributes["faultline.run.id"] as? String == report["runID"] as? String)
            let reportedTrace = report["traceID"] as? String
            #expect(reportedTrace == trace, "the report names the run's trace")
            let startLineNamesTrace = result.output.contains("(trace " + trace + ")")
            #expect(startLineNamesTrace, "the start line names it too")
            #expect(runAttributes["faultline.run.state"] as? String == "aborted")
            #expect(run["events"] as? [String] == ["abort"])
            #expect(spans.allSatisfy { $0["trace"] as? String == trace })

            let fault = try #require(spans.first { $0["name"] as? String == "fault cut" })
            #expect(fault["parent"] as? String == runID)
            #expect(fault["events"] as? [String] == ["inject", "revert"])
            let faultAttributes = fault["attributes"] as? [String: Any] ?? [:]
            #expect(faultAttributes["faultline.fault.type"] as? String == "drop")
            #expect(faultAttributes["faultline.fault.state"] as? String == "reverted")
            #expect((faultAttributes["faultline.fault.target"] as? String)?.isEmpty == false)
            // The fault's span lasts from its inject to the end of its revert, as the report says.
            let reportFault = try #require((report["faults"] as? [[String: Any]])?.first)
            let window = try #require(reportFault["revertedAt"] as? Double) - (try #require(reportFault["injectedAt"] as? Double))
            let spanWindow = Double(try #require(fault["end"] as? Int) - (try #require(fault["start"] as? Int))) / 1e9
            print("traces (\(transport)): \(spans.count) spans; fault window \(spanWindow) s (report: \(window) s)")
            #expect(abs(spanWindow - window) < 0.25)

            let probes = spans.filter { ($0["name"] as? String)?.hasPrefix("probe ") == true }
            #expect(probes.count == (report["probes"] as? [Any])?.count, "a span per probe request")
            #expect(probes.allSatisfy { $0["parent"] as? String == runID && $0["kind"] as? Int == 3 }, "client spans under the run")
            let failing = probes.filter { $0["status"] as? Int == 2 }
            #expect(!failing.isEmpty && failing.allSatisfy { $0["name"] as? String == "probe web" })
            #expect(probes.contains { ($0["attributes"] as? [String: Any])?["http.response.status_code"] as? Int == 200 })

            // The service saw each request's own span as its parent (the scenario's own traceparent header is replaced).
            let serviceSpans = Set(probes.filter { $0["name"] as? String == "probe service" }.compactMap { $0["span"] as? String })
            let requests = all.filter { $0["request"] as? String == "/checkout" }
            #expect(!requests.isEmpty)
            for request in requests {
                let parts = (request["traceparent"] as? String ?? "").split(separator: "-").map(String.init)
                #expect(parts.count == 4 && parts[0] == "00" && parts[1] == trace && serviceSpans.contains(parts[2]) && parts[3] == "01", "\(request)")
            }

            // The report names the trace of every bad result, and the Markdown lists them.
            let bad = (report["probes"] as? [[String: Any]] ?? []).filter { $0["good"] as? Bool == false }
            #expect(!bad.isEmpty && bad.allSatisfy { $0["traceID"] as? String == trace })
            let markdown = try String(contentsOfFile: setup.directory + "/out/report.md", encoding: .utf8)
            #expect(markdown.contains("## Failing probe requests and their traces") && markdown.contains("`\(trace)`"))
            #expect(try await setup.chains().isEmpty)
        }
    }

    @Test("a collector that never answers delays neither the abort nor the revert, and the exit by a few seconds at most",
          .enabled(if: otlpPython.path != nil, "\(otlpPython.reason)"))
    func aCollectorThatHangsHoldsUpNothing() async throws {
        let python = try #require(Self.otlpPython.path)
        try await withSetup { setup in
            let (receiver, port) = try await setup.startServer("otlp", Self.otlpReceiver, output: setup.directory + "/otlp.log", python: python)
            defer { setup.stop(receiver) }
            let file = try setup.file("hung", faults: "    - {name: cut, type: drop, start: 1s, to: {hosts: [\(TestNetwork.addressB)], ports: [8080], protocol: tcp}}")
            // OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is taken as it is: every export goes to /hang.
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out"],
                                             prefix: ["/usr/bin/env", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:\(port)/hang", TestPaths.faultline])
            let exited = Date()
            #expect(result.exit == 1, "\(result.output)")
            let report = try report(setup.directory + "/out")
            let revertedAt = try #require((report["faults"] as? [[String: Any]])?.first?["revertedAt"] as? Double)
            let abortedAt = try #require(report["abortedAt"] as? Double)
            let ended = try #require((report["endedAt"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
            print("collector hangs: reverted \(revertedAt - abortedAt) s after the abort; exited \(exited.timeIntervalSince(ended)) s after the run ended")
            #expect(revertedAt - abortedAt < 1, "the revert waited for the collector")
            #expect(exited.timeIntervalSince(ended) < 8, "the last flush gets 6 s at most")
            #expect(try await setup.chains().isEmpty)
        }
    }

    /// A service that counts requests: one line per request (its path and arrival time) in `output`; `/slow` answers
    /// after 300 ms. Keep-alive, a deep accept queue, a thread per connection.
    static let countingService = """
        import http.server, sys, time, threading
        port, output = int(sys.argv[1]), sys.argv[2]
        lock = threading.Lock()
        http.server.ThreadingHTTPServer.request_queue_size = 1024
        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_GET(self):
                with lock, open(output, "a") as f:
                    f.write("%s %.6f\\n" % (self.path, time.time()))
                if self.path.startswith("/slow"):
                    time.sleep(0.3)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
        """

    /// The arrival times the counting service wrote, sorted. The first is the steady-state check before the method;
    /// the load starts with the second. The method runs a little longer than its 5 s (it ends once the fault's revert
    /// is done), so the tests count 5 s from the second.
    static func arrivals(_ file: String) throws -> [Double] {
        let times = ((try? String(contentsOfFile: file, encoding: .utf8)) ?? "").split(separator: "\n")
            .compactMap { Double($0.split(separator: " ").last ?? "") }.sorted()
        try #require(times.count > 2, "the service saw \(times.count) requests")
        return times
    }

    @Test("an http probe with a rate drives that load open loop: the service sees rate x time requests ±5%, also when it answers slowly, and during a spike",
          arguments: [
              ("rate: 200", "/fast", 1000.0),
              ("rate: 200", "/slow", 1000.0),
              ("rate: 50\n        spike: {at: 2s, for: 1s, rate: 400}", "/spiky", 600.0),
          ])
    func loadArrivesAtTheSetRate(_ load: String, _ path: String, _ expected: Double) async throws {
        // The one fault pauses a process of the test's: it acts, and touches nothing the load reaches.
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        try await withSetup { setup in
            let received = setup.directory + "/requests.log"
            let (service, port) = try await setup.startServer("counting", Self.countingService, output: received)
            defer { setup.stop(service) }
            let steadyState = """
                  steadyState:
                    probes:
                      - name: load
                        http: {url: "http://127.0.0.1:\(port)\(path)", timeout: 2s}
                        \(load)
                """
            // The method lasts 5 s: the one fault lasts that long.
            let file = try setup.file("loaded", faults: "    - {name: bystander, type: pause-process, duration: 5s, match: {name: \(sleepers.name)}}",
                                      steadyState: steadyState, maxDuration: "20s")
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out"])
            #expect(result.exit == 0, "\(result.output)")
            let times = try Self.arrivals(received)
            let seen = Double(times.filter { $0 >= times[1] && $0 < times[1] + 5 }.count)
            let report = try report(setup.directory + "/out")
            let method = (report["probes"] as? [[String: Any]] ?? []).filter { $0["phase"] as? String == "method" }
            print("load \(load.replacingOccurrences(of: "\n", with: " ")) \(path): the service saw \(Int(seen)) requests in the method's first 5 s (expected \(Int(expected))); \(times.count - 2) in all the method, \(method.count) results recorded")
            #expect(abs(seen - expected) <= expected * 0.05, "saw \(seen), expected \(expected) ± 5%")
            if path == "/spiky" {
                // 400/s between 2 s and 3 s after the method started.
                let inSpike = times.filter { $0 - times[1] > 2.1 && $0 - times[1] < 2.9 }.count
                print("load: \(inSpike) requests in the spike's middle 0.8 s (expected 320)")
                #expect(abs(Double(inSpike) - 320) <= 320 * 0.1)
            }
        }
    }

    @Test("an agent started with --notify and --otlp-endpoint tells the webhook and the trace receiver about every run",
          .enabled(if: otlpPython.path != nil, "\(otlpPython.reason)"))
    func theAgentNotifiesAndTracesEveryRun() async throws {
        let python = try #require(Self.otlpPython.path)
        try await withSetup { setup in
            let spans = setup.directory + "/otlp.log", hooks = setup.directory + "/webhooks.log"
            // The agent and the receivers on this machine's loopback; the run's faults and probes in namespace A.
            let (receiver, otlpPort) = try await setup.startServer("otlp", Self.otlpReceiver, output: spans, python: python, inA: false)
            defer { setup.stop(receiver) }
            let (webhooks, hookPort) = try await setup.startServer("webhooks", Self.webhookReceiver, output: hooks, inA: false)
            defer { setup.stop(webhooks) }
            let agent = try await TestAgent.start(directory: setup.directory, state: setup.state,
                                                  extra: ["--notify", "http://127.0.0.1:\(hookPort)/agent", "--otlp-endpoint", "http://127.0.0.1:\(otlpPort)"])
            let scenario = agentScenario("fleet-told", target: setup.net.a, steadyState: Setup.defaultSteadyState + "\n",
                                         faults: "    - {name: cut, type: drop, start: 1s, to: {hosts: [\(TestNetwork.addressB)], ports: [8080], protocol: tcp}}")
            let id: String
            do {
                let created = try await agent.call(.POST, "/v1/runs", body: scenario)
                #expect(created.status == 201, "\(created.body)")
                id = try #require(created.json["id"] as? String)
                _ = try await agent.waitForRun(id, timeout: .seconds(20)) { ($0["state"] as? String) == "aborted" }
            } catch {
                await agent.stop()
                throw error
            }
            // SIGTERM: the agent sends its last spans before it exits.
            #expect(await agent.stop() == 0, "\(agent.output)")

            let messages = ((try? String(contentsOfFile: hooks, encoding: .utf8)) ?? "").split(separator: "\n")
                .filter { $0.hasPrefix("/agent ") }
                .compactMap { try? JSONSerialization.jsonObject(with: Data($0.dropFirst(7).utf8)) as? [String: Any] }
            #expect(messages.map { $0["event"] as? String ?? "" } == ["start", "abort", "end"], "\(messages)")
            #expect(messages.allSatisfy { $0["run"] as? String == id && $0["scenario"] as? String == "fleet-told" })

            let names = Self.lines(spans).compactMap { $0["name"] as? String }
            #expect(names.filter { $0 == "run fleet-told" }.count == 1, "\(names)")
            #expect(names.contains("fault cut") && names.contains("probe web"), "\(names)")
            #expect(try await setup.chains().isEmpty)
        }
    }

    @Test("load into a target namespace comes from inside it (a thread in the namespace, not a helper process per request), at the set rate")
    func loadIntoATargetNamespace() async throws {
        // The one fault pauses a process of the test's: it acts, and touches nothing the load reaches.
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        try await withSetup { setup in
            // The service listens on loopback inside namespace A only; the runner stays in this machine's namespace.
            let received = setup.directory + "/requests.log"
            let (service, port) = try await setup.startServer("counting", Self.countingService, output: received)
            defer { setup.stop(service) }
            let file = try setup.file("inside", faults: "    - {name: bystander, type: pause-process, duration: 5s, match: {name: \(sleepers.name)}}",
                                      steadyState: """
                                            steadyState:
                                              probes:
                                                - name: load
                                                  http: {url: "http://127.0.0.1:\(port)/inside", timeout: 2s}
                                                  rate: 200
                                          """,
                                      target: setup.net.a)
            let log = setup.directory + "/inside.log"
            let runner = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out"],
                                                table: ProcessTable(), output: log)
            let exit = await ChildProcess.waitForExit(runner.pid)
            #expect(exit == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            let times = try Self.arrivals(received)
            let seen = Double(times.filter { $0 >= times[1] && $0 < times[1] + 5 }.count)
            print("load into namespace A: the service saw \(Int(seen)) requests in 5 s (expected 1000)")
            #expect(abs(seen - 1000) <= 50)
        }
    }
}
