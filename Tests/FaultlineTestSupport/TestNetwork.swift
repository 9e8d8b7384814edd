import FaultlineCore
import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Two namespaces joined by a veth pair — client `a` (10.213.1.1, fd00:213:1::1) and server `b`
/// (10.213.1.2, fd00:213:1::2) — with TCP servers started by the test; `remove()` undoes all of it.
public struct TestNetwork: Sendable {
    public let a: String
    public let b: String
    public static let addressA = "10.213.1.1", addressB = "10.213.1.2"
    public static let address6A = "fd00:213:1::1", address6B = "fd00:213:1::2"
    let runner = SubprocessRunner()
    let servers: ServerSet
    /// The Python helper, written for this network and removed with it.
    let script: String

    public static func create() async throws -> TestNetwork {
        await TestNamespace.removeStale()
        let tag = "flt-test-\(getpid())-\(UInt16.random(in: 0 ... .max))"
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-netprobe.py").path
        try NetProbe.script.write(toFile: script, atomically: true, encoding: .utf8)
        let network = TestNetwork(a: tag + "a", b: tag + "b", servers: ServerSet(), script: script)
        do {
            try await network.must(["ip", "netns", "add", network.a])
            try await network.must(["ip", "netns", "add", network.b])
            for ns in [network.a, network.b] {
                // No duplicate address detection: IPv6 works the moment the link is up.
                for key in ["net.ipv6.conf.all.accept_dad", "net.ipv6.conf.default.accept_dad"] {
                    try await network.must(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "\(key)=0"])
                }
            }
            try await network.must(["ip", "-n", network.a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", network.b])
            for (ns, v4, v6) in [(network.a, addressA, address6A), (network.b, addressB, address6B)] {
                try await network.must(["ip", "-n", ns, "link", "set", "lo", "up"])
                try await network.must(["ip", "-n", ns, "addr", "add", "\(v4)/24", "dev", "eth0"])
                try await network.must(["ip", "-n", ns, "addr", "add", "\(v6)/64", "dev", "eth0", "nodad"])
                try await network.must(["ip", "-n", ns, "link", "set", "eth0", "up"])
            }
        } catch {
            await network.remove()
            throw error
        }
        return network
    }

    /// Runs `body` with a new network whose namespace B serves `ports` (port: body bytes) and a new
    /// temporary directory; removes both afterwards, also when `body` throws.
    public static func with(serving ports: [Int: Int], directoryTag: String, _ body: (TestNetwork, String) async throws -> Void) async throws {
        let net = try await create()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("flt-test-\(directoryTag)-\(UInt32.random(in: 0 ... .max))").path
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try await net.serve(in: net.b, ports: ports)
            try await body(net, directory)
        } catch {
            await net.remove()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        await net.remove()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Starts an HTTP server in `namespace` on each port (dual stack); a GET returns a body of `bytes` bytes.
    @discardableResult
    public func serve(in namespace: String, ports: [Int: Int]) async throws -> ProcessIdentity {
        let spec = ports.map { "\($0.key):\($0.value)" }
        let server = try servers.start(["/usr/sbin/ip", "netns", "exec", namespace, NetProbe.python, script, "serve"] + spec)
        let other = namespace == a ? b : a
        for port in ports.keys {
            for host in namespace == a ? [Self.addressA, Self.address6A] : [Self.addressB, Self.address6B] {
                var ready = false
                for _ in 0..<100 where !ready {
                    ready = (try? await connect(from: other, to: host, port: port, count: 1, timeout: 0.2).ok) == 1
                    if !ready { try await Task.sleep(for: .milliseconds(20)) }
                }
                guard ready else { throw TestFailure("test server on \(host) port \(port) in \(namespace) did not come up") }
            }
        }
        return server
    }

    /// `count` HTTP GET requests from `namespace`, `parallel` at a time: how many succeeded, were refused, timed out.
    public func connect(from namespace: String, to host: String, port: Int, count: Int, timeout: Double, parallel: Int = 20) async throws -> ConnectResult {
        let result = try await must(["ip", "netns", "exec", namespace, NetProbe.python, script, "connect",
                                     host, "\(port)", "\(count)", "\(timeout)", "\(parallel)"])
        return try JSONDecoder().decode(ConnectResult.self, from: Data(result.standardOutput.utf8))
    }

    /// `count` TCP handshakes one after another (`gap` seconds apart): each one's time in seconds, sorted.
    public func handshakes(from namespace: String, to host: String, port: Int, count: Int, timeout: Double = 2, gap: Double = 0.005) async throws -> HandshakeTimes {
        let result = try await must(["ip", "netns", "exec", namespace, NetProbe.python, script, "handshake",
                                     host, "\(port)", "\(count)", "\(timeout)", "\(gap)"])
        var times = try JSONDecoder().decode(HandshakeTimes.self, from: Data(result.standardOutput.utf8))
        times.times.sort()
        return times
    }

    /// Reads everything a server sends: bytes and seconds.
    public func download(from namespace: String, host: String, port: Int) async throws -> (bytes: Int, seconds: Double) {
        let result = try await must(["ip", "netns", "exec", namespace, NetProbe.python, script, "download", host, "\(port)"])
        let parsed = try JSONDecoder().decode([String: Double].self, from: Data(result.standardOutput.utf8))
        return (Int(parsed["bytes"] ?? 0), parsed["seconds"] ?? 0)
    }

    @discardableResult
    public func must(_ argv: [String]) async throws -> CommandResult {
        let result = try await runner.run(argv, timeout: .seconds(120), outputLimit: 8 << 20)
        guard result.succeeded else { throw TestFailure("'\(argv.joined(separator: " "))' exited \(result.exitCode): \(result.standardError)") }
        return result
    }

    public func remove() async {
        servers.stopAll()
        _ = try? await runner.run(["ip", "netns", "del", a])
        _ = try? await runner.run(["ip", "netns", "del", b])
        try? FileManager.default.removeItem(atPath: script)
    }
}

/// TCP handshake times, sorted, in seconds; and how many failed.
public struct HandshakeTimes: Decodable, Sendable {
    public var failed: Int
    public var times: [Double]

    /// The value below which `fraction` of the times fall, in milliseconds.
    public func percentile(_ fraction: Double) -> Double {
        guard !times.isEmpty else { return .nan }
        return times[min(times.count - 1, Int(Double(times.count) * fraction))] * 1000
    }

    public var medianMilliseconds: Double { percentile(0.5) }

    public var summary: String {
        String(format: "median %.1f ms, p10 %.1f ms, p90 %.1f ms, min %.1f ms, max %.1f ms, %d failed",
               percentile(0.5), percentile(0.1), percentile(0.9), (times.first ?? .nan) * 1000, (times.last ?? .nan) * 1000, failed)
    }
}

/// What a round of connects gave.
public struct ConnectResult: Decodable, Sendable {
    public var ok: Int = 0
    public var refused: Int = 0
    public var timeout: Int = 0
    public var other: Int = 0
    public var medianSeconds: Double = 0

    enum CodingKeys: String, CodingKey { case ok, refused, timeout, other, medianSeconds = "median" }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        ok = try c.decodeIfPresent(Int.self, forKey: .ok) ?? 0
        refused = try c.decodeIfPresent(Int.self, forKey: .refused) ?? 0
        timeout = try c.decodeIfPresent(Int.self, forKey: .timeout) ?? 0
        other = try c.decodeIfPresent(Int.self, forKey: .other) ?? 0
        medianSeconds = try c.decodeIfPresent(Double.self, forKey: .medianSeconds) ?? 0
    }

    public var total: Int { ok + refused + timeout + other }
    public var failed: Int { total - ok }
}

/// Server processes the tests started, stopped for sure at the end.
final class ServerSet: Sendable {
    private let processes = Mutex<[ProcessIdentity]>([])

    @discardableResult
    func start(_ argv: [String]) throws -> ProcessIdentity {
        let child = try ChildProcess.spawn(argv, table: ProcessTable())
        processes.withLock { $0.append(child) }
        return child
    }

    func stopAll() {
        for child in processes.withLock({ list in defer { list.removeAll() }; return list }) {
            _ = try? ProcessSignaller().send(.kill, to: child)
            for _ in 0..<200 where !ChildProcess.reap(child.pid) { usleep(5_000) }
        }
    }
}

import Synchronization

/// The Python helper that serves, connects and downloads inside the namespaces.
public enum NetProbe {
    public static let python = "/usr/bin/python3"

    /// An HTTP/1.0 server (`serve PORT:BODYBYTES ...`), a client that sends N GET requests and counts
    /// the outcomes (`connect`), and a timed download (`download`).
    static let script = #"""
    import json, socket, sys, threading, time, concurrent.futures

    def handle(conn, size):
        try:
            conn.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            payload = b"x" * 65536
            left = size
            while left > 0:
                left -= conn.send(payload[:min(left, len(payload))])
        except OSError:
            pass
        finally:
            conn.close()

    def serve(specs):
        def loop(sock, size):
            while True:
                conn, _ = sock.accept()
                threading.Thread(target=handle, args=(conn, size), daemon=True).start()
        for spec in specs:
            port, size = (int(x) for x in spec.split(":"))
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(("::", port))
            sock.listen(4096)
            threading.Thread(target=loop, args=(sock, size), daemon=True).start()
        while True:
            time.sleep(3600)

    def get(host, port, timeout):
        s = socket.create_connection((host, port), timeout=timeout)
        try:
            s.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
            response = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                response += chunk
        finally:
            s.close()
        if not response.startswith(b"HTTP/1.0 200"):
            raise OSError("bad response")
        return len(response) - response.index(b"\r\n\r\n") - 4

    def connect(host, port, count, timeout, parallel):
        def one(_):
            start = time.monotonic()
            try:
                get(host, port, timeout)
                kind = "ok"
            except ConnectionRefusedError:
                kind = "refused"
            except (socket.timeout, TimeoutError):
                kind = "timeout"
            except OSError:
                kind = "other"
            return kind, time.monotonic() - start
        with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(one, range(count)))
        out = {}
        for kind, _ in results:
            out[kind] = out.get(kind, 0) + 1
        times = sorted(t for _, t in results)
        out["median"] = times[len(times) // 2]
        print(json.dumps(out))

    def handshake(host, port, count, timeout, gap):
        times, failed = [], 0
        for _ in range(count):
            start = time.monotonic()
            try:
                s = socket.create_connection((host, port), timeout=timeout)
                times.append(time.monotonic() - start)
                s.close()
            except OSError:
                failed += 1
            time.sleep(gap)
        print(json.dumps({"failed": failed, "times": times}))

    def download(host, port):
        start = time.monotonic()
        size = get(host, port, 30)
        print(json.dumps({"bytes": size, "seconds": time.monotonic() - start}))

    mode = sys.argv[1]
    if mode == "serve":
        serve(sys.argv[2:])
    elif mode == "connect":
        connect(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]))
    elif mode == "handshake":
        handshake(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
    elif mode == "download":
        download(sys.argv[2], int(sys.argv[3]))
    """#
}
