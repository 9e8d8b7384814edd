import FaultlineCore
import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus server (Debian's `prometheus`) on this machine's loopback: its own directory, storage and port,
/// a 1 s scrape interval, scraping itself (`job="self"`) and whatever else the test names; stopped and removed by `stop()`.
public final class TestPrometheus: Sendable {
    public static let binary = "/usr/bin/prometheus"
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: binary) && Privilege.hasTool("curl") }
    public static let unavailable = "needs Debian's prometheus and curl (apt-get install prometheus curl; make test-deps installs them)"

    public let directory: String
    public let port: Int
    public let process: ProcessIdentity
    /// `user:password` when the server asks for basic auth.
    let credentials: String?

    public var url: String { "http://127.0.0.1:\(port)" }

    init(directory: String, port: Int, process: ProcessIdentity, credentials: String?) {
        self.directory = directory
        self.port = port
        self.process = process
        self.credentials = credentials
    }

    /// Starts a server that scrapes itself and the `scrapeConfigs` (YAML list items, indented as under `scrape_configs:`),
    /// and waits until its own `up` series is there. `basicAuth` (user, password) makes the server ask for it.
    public static func start(scrapeConfigs: [String] = [], basicAuth: (user: String, password: String)? = nil) async throws -> TestPrometheus {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-prometheus-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            let port = try freeLoopbackPort()
            var arguments = [binary, "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                             "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn"]
            var selfAuth = ""
            if let basicAuth {
                let hash = try await SubprocessRunner().run(["/usr/bin/python3", "-W", "ignore", "-c",
                    "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))", basicAuth.password])
                let bcrypt = hash.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
                guard bcrypt.hasPrefix("$2") else { throw TestFailure("cannot make a bcrypt hash: \(hash.standardError)") }
                try "basic_auth_users:\n  \(basicAuth.user): '\(bcrypt)'\n".write(toFile: "\(directory)/web.yml", atomically: true, encoding: .utf8)
                arguments.append("--web.config.file=\(directory)/web.yml")
                selfAuth = "    basic_auth: {username: \(basicAuth.user), password: '\(basicAuth.password)'}\n"
            }
            let config = """
                global: {scrape_interval: 1s, evaluation_interval: 1s, scrape_timeout: 900ms}
                scrape_configs:
                  - job_name: self
                    static_configs: [{targets: ["127.0.0.1:\(port)"]}]
                \(selfAuth)\(scrapeConfigs.joined(separator: "\n"))

                """
            try config.write(toFile: "\(directory)/prometheus.yml", atomically: true, encoding: .utf8)
            let process = try ChildProcess.spawn(arguments, table: ProcessTable(), output: "\(directory)/prometheus.log")
            let server = TestPrometheus(directory: directory, port: port, process: process,
                                        credentials: basicAuth.map { "\($0.user):\($0.password)" })
            do {
                try await server.waitForValue(#"up{job="self"}"#, timeout: .seconds(30)) { $0 == 1 }
            } catch {
                server.stop()
                throw error
            }
            return server
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// The server's JSON answer to an instant query (through curl, so the test does not use the code under test).
    public func query(_ query: String) async throws -> [String: Any] {
        var argv = ["curl", "-sS", "--max-time", "5", "-G", "--data-urlencode", "query=\(query)", "\(url)/api/v1/query"]
        if let credentials { argv += ["--user", credentials] }
        let result = try await SubprocessRunner().run(argv, timeout: .seconds(6), outputLimit: 1 << 20)
        guard let answer = try? JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any] else {
            throw TestFailure("no JSON from \(url) for \(query): \(result.standardOutput) \(result.standardError)")
        }
        return answer
    }

    /// The single value of an instant query, or nil when it gives no series.
    public func value(_ query: String) async throws -> Double? {
        let answer = try await self.query(query)
        guard answer["status"] as? String == "success", let data = answer["data"] as? [String: Any] else {
            throw TestFailure("query \(query) failed: \(answer)")
        }
        let sample: [Any]?
        if data["resultType"] as? String == "scalar" { sample = data["result"] as? [Any] } else {
            sample = ((data["result"] as? [[String: Any]])?.first?["value"]) as? [Any]
        }
        return (sample?.last as? String).flatMap(Double.init)
    }

    /// Polls `query` until its value satisfies `condition`; the last value.
    @discardableResult
    public func waitForValue(_ query: String, timeout: Duration = .seconds(15), until condition: (Double) -> Bool) async throws -> Double {
        let deadline = ContinuousClock.now + timeout
        var last: Double?
        while ContinuousClock.now < deadline {
            if let value = try? await value(query) {
                last = value
                if condition(value) { return value }
            }
            guard ProcessTable().read(process.pid) != nil, !ChildProcess.reap(process.pid) else {
                throw TestFailure("prometheus exited: \(log)")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw TestFailure("\(query) did not reach the condition within \(timeout) (last: \(last.map { "\($0)" } ?? "no data")); log: \(log.suffix(800))")
    }

    public var log: String { (try? String(contentsOfFile: "\(directory)/prometheus.log", encoding: .utf8)) ?? "" }

    /// Stops the server and removes its directory.
    public func stop() {
        _ = try? ProcessSignaller().send(.term, to: process)
        for _ in 0..<400 where !ChildProcess.reap(process.pid) { usleep(10_000) }
        if ProcessTable().read(process.pid) != nil {
            _ = try? ProcessSignaller().send(.kill, to: process)
            for _ in 0..<200 where !ChildProcess.reap(process.pid) { usleep(5_000) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A small exporter of a checkout service's series for the test Prometheus to scrape: `http_requests_total{service,
/// code}` counters and an `http_request_duration_seconds` histogram, advanced at each scrape by the time since the last.
/// Healthy: 20 requests/s, all 200, all within 50 ms. Broken — while the process `worker` (a PID) is stopped
/// (state T), or while the file `broken` exists in its directory: 10 of them 500s, and half take 800 ms.
public final class TestExporter: Sendable {
    public let port: Int
    public let directory: String
    let process: ProcessIdentity

    init(port: Int, directory: String, process: ProcessIdentity) {
        self.port = port
        self.directory = directory
        self.process = process
    }

    public var target: String { "127.0.0.1:\(port)" }
    /// A `scrape_configs` item for this exporter (`job="checkout"`).
    public var scrapeConfig: String { "  - job_name: checkout\n    static_configs: [{targets: [\"\(target)\"]}]" }

    static let script = #"""
        import http.server, os, sys, threading, time
        port, directory, worker = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        lock = threading.Lock()
        state = {"last": time.monotonic(), "ok": 0.0, "error": 0.0, "fast": 0.0, "slow": 0.0, "sum": 0.0}
        def broken():
            if os.path.exists(os.path.join(directory, "broken")):
                return True
            try:
                with open("/proc/%d/stat" % worker) as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "T"
            except OSError:
                return False
        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass
            def do_GET(self):
                with lock:
                    now = time.monotonic()
                    dt, state["last"] = now - state["last"], now
                    if broken():
                        state["ok"] += 10 * dt; state["error"] += 10 * dt
                        state["fast"] += 10 * dt; state["slow"] += 10 * dt; state["sum"] += 10 * dt * (0.05 + 0.8)
                    else:
                        state["ok"] += 20 * dt; state["fast"] += 20 * dt; state["sum"] += 20 * dt * 0.05
                    s = dict(state)
                total = s["fast"] + s["slow"]
                lines = [
                    "# TYPE http_requests_total counter",
                    'http_requests_total{service="checkout",code="200"} %f' % s["ok"],
                    'http_requests_total{service="checkout",code="500"} %f' % s["error"],
                    "# TYPE http_request_duration_seconds histogram",
                    'http_request_duration_seconds_bucket{service="checkout",le="0.1"} %f' % s["fast"],
                    'http_request_duration_seconds_bucket{service="checkout",le="0.5"} %f' % s["fast"],
                    'http_request_duration_seconds_bucket{service="checkout",le="1"} %f' % total,
                    'http_request_duration_seconds_bucket{service="checkout",le="+Inf"} %f' % total,
                    'http_request_duration_seconds_sum{service="checkout"} %f' % s["sum"],
                    'http_request_duration_seconds_count{service="checkout"} %f' % total,
                ]
                body = ("\n".join(lines) + "\n").encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        server.serve_forever()
        """#

    /// Starts the exporter; `worker` is the PID whose stop breaks the service (0: only the `broken` file does).
    public static func start(worker: Int32 = 0) async throws -> TestExporter {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-exporter-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try script.write(toFile: "\(directory)/exporter.py", atomically: true, encoding: .utf8)
        let port = try freeLoopbackPort()
        let process = try ChildProcess.spawn(["/usr/bin/python3", "\(directory)/exporter.py", "\(port)", directory, "\(worker)"],
                                             table: ProcessTable(), output: "\(directory)/exporter.log")
        let exporter = TestExporter(port: port, directory: directory, process: process)
        for _ in 0..<100 {
            let result = try await SubprocessRunner().run(["curl", "-sf", "--max-time", "1", "http://\(exporter.target)/metrics"], timeout: .seconds(2), outputLimit: 1 << 20)
            if result.exitCode == 0 { return exporter }
            try await Task.sleep(for: .milliseconds(50))
        }
        exporter.stop()
        throw TestFailure("the exporter did not listen on \(exporter.target)")
    }

    /// Breaks (or mends) the service by hand.
    public func setBroken(_ broken: Bool) throws {
        let file = "\(directory)/broken"
        if broken { _ = FileManager.default.createFile(atPath: file, contents: Data()) } else { try? FileManager.default.removeItem(atPath: file) }
    }

    public func stop() {
        _ = try? ProcessSignaller().send(.kill, to: process)
        for _ in 0..<200 where !ChildProcess.reap(process.pid) { usleep(5_000) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestFailure("socket: \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw TestFailure("bind: \(errno)") }
    let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    guard named == 0 else { throw TestFailure("getsockname: \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}
