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

/// Runs steady-state probes: http and prometheus over AsyncHTTPClient, tcp connects over NIO, commands as argv.
/// With a target namespace every probe runs inside it: commands through nsenter, and the others through a
/// short-lived `faultline probe` helper entered into the namespace, which measures its own latency.
public struct ProbeExecutor: Sendable {
    let runner: any CommandRunner
    let target: NetnsTarget?
    let client: HTTPClient
    /// The faultline executable, for the helper that probes from inside a target namespace.
    let executable: String?
    /// Load probes' client inside the target namespace (made at the first load request).
    let namespaced = NamespacedLoadCache()

    public init(runner: any CommandRunner = SubprocessRunner(), target: NetnsTarget? = nil, executable: String? = nil, client: HTTPClient = .shared) {
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
        return configuration
    }

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
            return ((false, Self.describe(error)), nil)
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
            return tcp.expect == .unreachable ? (true, "unreachable: \(Self.describe(error))") : (false, Self.describe(error))
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
        var components = URLComponents(string: prometheus.url.hasSuffix("/") ? String(prometheus.url.dropLast()) : prometheus.url)
        components?.path += "/api/v1/query"
        components?.queryItems = [URLQueryItem(name: "query", value: prometheus.query)]
        guard let url = components?.url?.absoluteString else { return (false, "invalid URL '\(prometheus.url)'") }
        do {
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: Self.timeAmount(prometheus.timeout))
            let body = try await response.body.collect(upTo: 4 << 20)
            guard response.status.code == 200 else { return (false, "status \(response.status.code)") }
            let value = try Self.queryValue(Data(body.readableBytesView))
            let ok: Bool = switch prometheus.expect {
            case .below(let bound): value < bound
            case .above(let bound): value > bound
            case .equals(let bound): value == bound
            }
            return (ok, "value \(value)")
        } catch {
            return (false, Self.describe(error))
        }
    }

    /// The one value of a Prometheus instant query (scalar, or a vector of exactly one series).
    static func queryValue(_ data: Data) throws -> Double {
        struct Answer: Decodable {
            struct Payload: Decodable {
                var resultType: String
                var result: ResultValue
            }
            enum ResultValue: Decodable {
                case scalar([Sample]), vector([[String: [Sample]]])
                init(from decoder: any Decoder) throws {
                    let c = try decoder.singleValueContainer()
                    if let vector = try? c.decode([[String: [Sample]]].self) { self = .vector(vector) } else { self = .scalar(try c.decode([Sample].self)) }
                }
            }
            enum Sample: Decodable {
                case time(Double), text(String)
                init(from decoder: any Decoder) throws {
                    let c = try decoder.singleValueContainer()
                    if let number = try? c.decode(Double.self) { self = .time(number) } else { self = .text(try c.decode(String.self)) }
                }
            }
            var status: String
            var data: Payload?
            var error: String?
        }
        let answer = try JSONDecoder().decode(Answer.self, from: data)
        guard answer.status == "success", let payload = answer.data else { throw ProbeFailure("query failed: \(answer.error ?? answer.status)") }
        let sample: [Answer.Sample]
        switch payload.result {
        case .scalar(let value): sample = value
        case .vector(let series):
            guard series.count == 1, let value = series[0]["value"] else {
                throw ProbeFailure(series.isEmpty ? "query returned no data" : "query returned \(series.count) series; aggregate it (sum(...)) to one")
            }
            sample = value
        }
        guard sample.count == 2, case .text(let text) = sample[1], let value = Double(text) else { throw ProbeFailure("unexpected query result") }
        return value
    }

    static func split(_ address: String) -> (String, Int)? {
        if address.hasPrefix("["), let close = address.firstIndex(of: "]") {
            return Int(address[address.index(close, offsetBy: 2)...]).map { (String(address[address.index(after: address.startIndex)..<close]), $0) }
        }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else { return nil }
        return (String(address[..<colon]), port)
    }

    static func describe(_ error: any Error) -> String {
        if let failure = error as? ProbeFailure { return failure.message }
        if let http = error as? HTTPClientError { return "\(http)" }
        return "\(error)"
    }
}

struct ProbeFailure: Error, Sendable {
    var message: String
    init(_ message: String) { self.message = message }
}
