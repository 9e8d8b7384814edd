import AsyncHTTPClient
import FaultlineCore
import FaultlineSystem
import Foundation
import NIOCore
import NIOPosix

/// What one probe check gave.
public struct ProbeOutcome: Sendable, Hashable, Codable {
    public var ok: Bool
    /// How long the check took, in seconds.
    public var latency: Double
    /// The status, value or error, for people.
    public var detail: String
    /// The HTTP status, when an http probe got an answer.
    public var status: Int?

    public init(ok: Bool, latency: Double, detail: String, status: Int? = nil) {
        self.ok = ok
        self.latency = latency
        self.detail = detail
        self.status = status
    }
}

/// What checks a run's probes: the real executor, or a fake in tests.
public protocol ProbeChecking: Sendable {
    /// One result of `probe`, now.
    func check(_ probe: Probe) async -> ProbeOutcome
    /// Ends what the probes of a run opened.
    func finish() async
}

/// Runs steady-state probes: http and prometheus over AsyncHTTPClient, tcp connects over NIO, commands as argv.
/// With a target namespace every probe runs inside it: commands through nsenter, and the others through a
/// short-lived `faultline probe` helper entered into the namespace, which measures its own latency.
public struct ProbeExecutor: ProbeChecking {
    let runner: any CommandRunner
    let target: NetnsTarget?
    let client: HTTPClient
    /// The faultline executable, for the helper that probes from inside a target namespace.
    let executable: String?
    /// Load probes' client inside the target namespace (made at the first load request).
    let namespaced = NamespacedLoadCache()

    public init(runner: any CommandRunner = SubprocessRunner(), target: NetnsTarget? = nil, executable: String? = nil, client: HTTPClient = ProbeExecutor.client) {
        self.runner = runner
        self.target = target
        self.executable = executable
        self.client = client
    }

    public func check(_ probe: Probe) async -> ProbeOutcome {
        if let target, let executable {
            switch probe.check {
            case .http where probe.drivesLoad:
                // Hundreds of requests a second: not a helper process each, but a thread inside the namespace.
                switch namespaced.load(for: target) {
                case .success(let load):
                    return await withTaskExecutorPreference(load.executor) { await checkHere(probe, loadClient: load.client) }
                case .failure(let failure):
                    return ProbeOutcome(ok: false, latency: 0, detail: "load from inside \(target): \(failure.message)")
                }
            case .http, .tcp, .prometheus: return await checkInside(target, probe, executable: executable)
            case .command: break
            }
        }
        return await checkHere(probe)
    }

    /// Ends what the probes of a run opened (the namespaced load client).
    public func finish() async {
        await namespaced.shutdown()
    }

    /// Runs the probe here, in this process's namespace (or, with `loadClient`, the namespace of its thread).
    public func checkHere(_ probe: Probe, loadClient: HTTPClient? = nil) async -> ProbeOutcome {
        let clock = ContinuousClock()
        let start = clock.now
        var outcome: (ok: Bool, detail: String)
        var status: Int?
        switch probe.check {
        case .http(let http): (outcome, status) = await check(http, client: probe.drivesLoad ? loadClient ?? Self.loadClient : client)
        case .tcp(let tcp): outcome = await check(tcp)
        case .command(let command): outcome = await check(command)
        case .prometheus(let prometheus): outcome = await check(prometheus)
        }
        let elapsed = clock.now - start
        return ProbeOutcome(ok: outcome.ok, latency: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                            detail: outcome.detail, status: status)
    }

    static func timeAmount(_ span: TimeSpan) -> TimeAmount { .microseconds(span.microseconds) }

    /// The probe's own timeout, for the helper's deadline.
    static func timeout(of probe: Probe) -> TimeSpan {
        switch probe.check {
        case .http(let http): http.timeout
        case .tcp(let tcp): tcp.timeout
        case .command(let command): command.timeout
        case .prometheus(let prometheus): prometheus.timeout
        }
    }

    /// `nsenter --net=TARGET -- faultline probe JSON`: the helper checks from inside and prints its outcome.
    func checkInside(_ target: NetnsTarget, _ probe: Probe, executable: String) async -> ProbeOutcome {
        guard let json = try? String(decoding: JSONEncoder().encode(probe), as: UTF8.self) else {
            return ProbeOutcome(ok: false, latency: 0, detail: "cannot encode the probe")
        }
        let argv = ["nsenter", "--net=\(target.namespacePath)", "--", executable, "probe", json]
        do {
            let result = try await runner.run(argv, timeout: .microseconds(Self.timeout(of: probe).microseconds) + .seconds(5), outputLimit: 1 << 16)
            if let outcome = try? JSONDecoder().decode(ProbeOutcome.self, from: Data(result.standardOutput.utf8)) { return outcome }
            return ProbeOutcome(ok: false, latency: 0, detail: "probe helper in \(target) failed (exit \(result.exitCode)): \(result.standardError.prefix(200))")
        } catch {
            return ProbeOutcome(ok: false, latency: 0, detail: "probe helper in \(target): \(error)")
        }
    }

    /// The client of probes that drive load: open loop means as many requests in flight as the service's slowness
    /// asks for, so its pool is not the usual 8 connections per host (requests would queue here, and the service
    /// would see less load than the rate says). Lives as long as the process.
    static let loadClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: loadConfiguration)

    static var loadConfiguration: HTTPClient.Configuration {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1_000)
        configuration.connectionPool.retryConnectionEstablishment = false
        return configuration
    }

    /// The client of single probe requests: a refused connection is a bad result at once, not a retry until the
    /// probe's timeout (AsyncHTTPClient's default), so a service that is down is seen as down, not as slow.
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    func check(_ http: HTTPCheck, client: HTTPClient) async -> ((Bool, String), status: Int?) {
        var request = HTTPClientRequest(url: http.url)
        request.method = .RAW(value: http.method)
        for (name, value) in (http.headers ?? [:]).sorted(by: { $0.key < $1.key }) { request.headers.add(name: name, value: value) }
        if let body = http.body { request.body = .bytes(ByteBuffer(string: body)) }
        do {
            let response = try await client.execute(request, timeout: Self.timeAmount(http.timeout))
            let body = try await response.body.collect(upTo: 1 << 20)
            let status = Int(response.status.code)
            guard http.expect.status.contains(where: { $0.matches(status) }) else {
                return ((false, "status \(status), expected \(http.expect.status.map(\.description).joined(separator: "|"))"), status)
            }
            if let needle = http.expect.bodyContains, !String(buffer: body).contains(needle) {
                return ((false, "status \(status), body lacks '\(needle)'"), status)
            }
            return ((true, "status \(status)"), status)
        } catch {
            return ((false, Self.describe(error, timeout: http.timeout)), nil)
        }
    }

    func check(_ tcp: TCPCheck) async -> (Bool, String) {
        guard let (host, port) = Self.split(tcp.address) else { return (false, "invalid address '\(tcp.address)'") }
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(Self.timeAmount(tcp.timeout))
                .connect(host: host, port: port).get()
            try? await channel.close().get()
            return tcp.expect == .connected ? (true, "connected") : (false, "connected, expected unreachable")
        } catch {
            return tcp.expect == .unreachable ? (true, "unreachable: \(Self.describe(error, timeout: tcp.timeout))") : (false, Self.describe(error, timeout: tcp.timeout))
        }
    }

    func check(_ command: CommandCheck) async -> (Bool, String) {
        let argv = target.map { ["nsenter", "--net=\($0.namespacePath)", "--"] + command.argv } ?? command.argv
        do {
            let result = try await runner.run(argv, timeout: .microseconds(command.timeout.microseconds), outputLimit: 1 << 20)
            if result.exitCode == command.expect.exitCode { return (true, "exit \(result.exitCode)") }
            let stderr = result.standardError.trimmingCharacters(in: .whitespacesAndNewlines).prefix(200)
            return (false, "exit \(result.exitCode), expected \(command.expect.exitCode)" + (stderr.isEmpty ? "" : ": \(stderr)"))
        } catch {
            return (false, error.description)
        }
    }

    func check(_ prometheus: PrometheusCheck) async -> (Bool, String) {
        guard let url = PrometheusQuery.url(base: prometheus.url, query: prometheus.query) else { return (false, "invalid URL '\(prometheus.url)'") }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Accept", value: "application/json")
        do {
            if let auth = prometheus.auth { request.headers.add(name: "Authorization", value: try PrometheusQuery.authorization(auth)) }
            let response = try await client.execute(request, timeout: Self.timeAmount(prometheus.timeout))
            let body = try await response.body.collect(upTo: 4 << 20)
            let value = try PrometheusQuery.value(from: Data(body.readableBytesView), status: Int(response.status.code))
            let ok: Bool = switch prometheus.expect {
            case .below(let bound): value < bound
            case .above(let bound): value > bound
            case .equals(let bound): value == bound
            }
            return (ok, "value \(TimeSpan.trim(value))")
        } catch {
            return (false, Self.describe(error, timeout: prometheus.timeout))
        }
    }

    static func split(_ address: String) -> (String, Int)? {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            return Int(address[address.index(close, offsetBy: 2)...]).map { (String(address[address.index(after: address.startIndex)..<close]), $0) }
        }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        return (String(address[..<colon]), port)
    }

    /// An error in words: what a library throws never reaches the operator raw.
    static func describe(_ error: any Error, timeout: TimeSpan? = nil) -> String {
        if let failure = error as? ProbeFailure { return failure.message }
        if let http = error as? HTTPClientError {
            switch http {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "timed out" + (timeout.map { " after \($0)" } ?? "")
            case .connectTimeout: return "connect timed out" + (timeout.map { " after \($0)" } ?? "")
            case .remoteConnectionClosed: return "the server closed the connection"
            case .bodyLengthMismatch: return "the answer was cut short"
            default: return "\(http)"
            }
        }
        if let io = error as? IOError { return Self.errnoText(io.errnoCode) }
        if let connection = error as? NIOConnectionError {
            if let io = connection.connectionErrors.lazy.compactMap({ $0.error as? IOError }).first { return Self.errnoText(io.errnoCode) }
            if connection.dnsAError != nil || connection.dnsAAAAError != nil { return "cannot resolve \(connection.host)" }
        }
        if let channel = error as? ChannelError, case .connectTimeout = channel { return "connect timed out" + (timeout.map { " after \($0)" } ?? "") }
        return "\(error)"
    }

    /// `connection refused`, `no route to host`: the C library's words for an errno, in lower case.
    static func errnoText(_ code: Int32) -> String {
        let text = String(cString: strerror(code))
        return text.prefix(1).lowercased() + text.dropFirst()
    }
}

struct ProbeFailure: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}
