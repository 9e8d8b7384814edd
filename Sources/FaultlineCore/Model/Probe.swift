/// A steady-state probe, run every `interval` before, during and after the method.
public struct Probe: Sendable, Hashable, Codable {
    public var name: ResourceName
    public var interval: TimeSpan = .seconds(1)
    public var check: ProbeCheck
    /// Open-loop load: this many requests per second (http only).
    public var rate: Double?
    /// Load that rises linearly (http only), instead of a fixed rate.
    public var ramp: LoadRamp?
    /// Bursts of load (http only): during each, requests go at its rate instead.
    public var spikes: [LoadSpike]?
    /// Checked only while this fault is in place (from its inject to its revert), not in the steady-state checks
    /// before and after: what must hold *because of* the fault, e.g. a partition that must not leak.
    public var during: ResourceName?

    public init(name: ResourceName, interval: TimeSpan = .seconds(1), check: ProbeCheck, rate: Double? = nil, ramp: LoadRamp? = nil,
                spikes: [LoadSpike]? = nil, during: ResourceName? = nil) {
        self.name = name
        self.interval = interval
        self.check = check
        self.rate = rate
        self.ramp = ramp
        self.spikes = spikes
        self.during = during
    }

    /// The most requests per second one probe's load may ask for.
    public static let maxLoadRate = 10_000.0
    /// The shortest interval between a probe's checks.
    public static let minimumInterval = TimeSpan.milliseconds(10)

    /// Whether it drives load (rate, ramp or spikes) rather than checking once per interval.
    public var drivesLoad: Bool { rate != nil || ramp != nil || spikes != nil }

    /// The open-loop rate `seconds` after the method started, or nil for one check per interval (closed loop).
    public func loadRate(at seconds: Double) -> Double? {
        if let spike = spikes?.first(where: { seconds >= $0.at.seconds && seconds < $0.at.seconds + $0.duration.seconds }) {
            return spike.rate
        }
        if let ramp { return ramp.from + (ramp.to - ramp.from) * min(1, seconds / max(ramp.over.seconds, 0.001)) }
        return rate
    }

    private enum CodingKeys: String, CodingKey { case name, interval, http, tcp, command, prometheus, rate, ramp, spike, during }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(ResourceName.self, forKey: .name)
        interval = try c.decodeIfPresent(TimeSpan.self, forKey: .interval) ?? .seconds(1)
        rate = try c.decodeIfPresent(Double.self, forKey: .rate)
        ramp = try c.decodeIfPresent(LoadRamp.self, forKey: .ramp)
        spikes = try c.decodeIfPresent([LoadSpike].self, forKey: .spike)
        during = try c.decodeIfPresent(ResourceName.self, forKey: .during)
        if let http = try c.decodeIfPresent(HTTPCheck.self, forKey: .http) {
            check = .http(http)
        } else if let tcp = try c.decodeIfPresent(TCPCheck.self, forKey: .tcp) {
            check = .tcp(tcp)
        } else if let command = try c.decodeIfPresent(CommandCheck.self, forKey: .command) {
            check = .command(command)
        } else {
            check = .prometheus(try c.decode(PrometheusCheck.self, forKey: .prometheus))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(interval, forKey: .interval)
        switch check {
        case .http(let http): try c.encode(http, forKey: .http)
        case .tcp(let tcp): try c.encode(tcp, forKey: .tcp)
        case .command(let command): try c.encode(command, forKey: .command)
        case .prometheus(let prometheus): try c.encode(prometheus, forKey: .prometheus)
        }
        try c.encodeIfPresent(rate, forKey: .rate)
        try c.encodeIfPresent(ramp, forKey: .ramp)
        try c.encodeIfPresent(spikes, forKey: .spike)
        try c.encodeIfPresent(during, forKey: .during)
    }
}

/// The kind of check a probe makes.
public enum ProbeCheck: Sendable, Hashable {
    case http(HTTPCheck)
    case tcp(TCPCheck)
    case command(CommandCheck)
    case prometheus(PrometheusCheck)

    /// `http`, `tcp`, `command` or `prometheus`.
    public var kind: String {
        switch self {
        case .http: "http"
        case .tcp: "tcp"
        case .command: "command"
        case .prometheus: "prometheus"
        }
    }
}

/// Load that rises from `from` to `to` requests per second over `over`.
public struct LoadRamp: Sendable, Hashable, Codable {
    public var from: Double
    public var to: Double
    public var over: TimeSpan

    public init(from: Double, to: Double, over: TimeSpan) {
        self.from = from
        self.to = to
        self.over = over
    }
}

/// An HTTP request and what its answer must be.
public struct HTTPCheck: Sendable, Hashable, Codable {
    public var url: String
    public var method: String = "GET"
    public var headers: [String: String]?
    public var body: String?
    public var timeout: TimeSpan = .seconds(2)
    public var expect: HTTPExpectation = HTTPExpectation()

    public init(url: String, method: String = "GET", headers: [String: String]? = nil, body: String? = nil, timeout: TimeSpan = .seconds(2), expect: HTTPExpectation = HTTPExpectation()) {
        self.url = url
        self.method = method
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.expect = expect
    }
}

/// What a good HTTP answer looks like.
public struct HTTPExpectation: Sendable, Hashable, Codable {
    /// Accepted status codes or classes; default `2xx`.
    public var status: [StatusMatcher] = [.statusClass(2)]
    public var bodyContains: String?

    public init(status: [StatusMatcher] = [.statusClass(2)], bodyContains: String? = nil) {
        self.status = status
        self.bodyContains = bodyContains
    }
}

/// One accepted HTTP status: an exact code (`200`) or a class (`2xx`).
public enum StatusMatcher: TextValue {
    case code(Int)
    case statusClass(Int)

    public init(parsing text: String) throws(ValueError) {
        if let code = Int(text) {
            guard (100...599).contains(code) else { throw ValueError("status code \(text) is out of range 100–599") }
            self = .code(code)
        } else if text.count == 3, text.lowercased().hasSuffix("xx"), let digit = Int(text.prefix(1)), (1...5).contains(digit) {
            self = .statusClass(digit)
        } else {
            throw ValueError("invalid status '\(text)': use a code like 200 or a class like 2xx")
        }
    }

    public func matches(_ status: Int) -> Bool {
        switch self {
        case .code(let code): status == code
        case .statusClass(let digit): status / 100 == digit
        }
    }

    public var description: String {
        switch self {
        case .code(let code): "\(code)"
        case .statusClass(let digit): "\(digit)xx"
        }
    }
}

/// A TCP connect to `host:port`.
public struct TCPCheck: Sendable, Hashable, Codable {
    /// What the probe expects of the connect: that it succeeds (the default), or that it does not — a partition
    /// or a firewall rule that must hold.
    public enum Expectation: String, Sendable, Hashable, Codable, CaseIterable {
        case connected, unreachable
    }

    public var address: String
    public var timeout: TimeSpan = .seconds(2)
    public var expect: Expectation = .connected

    public init(address: String, timeout: TimeSpan = .seconds(2), expect: Expectation = .connected) {
        self.address = address
        self.timeout = timeout
        self.expect = expect
    }

    private enum CodingKeys: String, CodingKey { case address, timeout, expect }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        address = try c.decode(String.self, forKey: .address)
        timeout = try c.decodeIfPresent(TimeSpan.self, forKey: .timeout) ?? .seconds(2)
        expect = try c.decodeIfPresent(Expectation.self, forKey: .expect) ?? .connected
    }
}

/// A command run as argv (never through a shell) and the exit code it must give.
public struct CommandCheck: Sendable, Hashable, Codable {
    public struct Expectation: Sendable, Hashable, Codable {
        public var exitCode: Int32 = 0
        public init(exitCode: Int32 = 0) { self.exitCode = exitCode }
    }

    public var argv: [String]
    public var timeout: TimeSpan = .seconds(5)
    public var expect: Expectation = Expectation()

    public init(argv: [String], timeout: TimeSpan = .seconds(5), expect: Expectation = Expectation()) {
        self.argv = argv
        self.timeout = timeout
        self.expect = expect
    }
}

/// A Prometheus instant query and the bound its value must keep.
public struct PrometheusCheck: Sendable, Hashable, Codable {
    /// The bound: exactly one of below, above, equals.
    public enum Expectation: Sendable, Hashable, Codable {
        case below(Double)
        case above(Double)
        case equals(Double)

        private enum CodingKeys: String, CodingKey { case below, above, equals }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            if let value = try c.decodeIfPresent(Double.self, forKey: .below) { self = .below(value) }
            else if let value = try c.decodeIfPresent(Double.self, forKey: .above) { self = .above(value) }
            else { self = .equals(try c.decode(Double.self, forKey: .equals)) }
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            switch self {
            case .below(let value): try c.encode(value, forKey: .below)
            case .above(let value): try c.encode(value, forKey: .above)
            case .equals(let value): try c.encode(value, forKey: .equals)
            }
        }
    }

    public var url: String
    public var query: String
    public var timeout: TimeSpan = .seconds(2)
    public var expect: Expectation
    /// How to authenticate to the Prometheus server, if it asks.
    public var auth: PrometheusAuth?

    public init(url: String, query: String, timeout: TimeSpan = .seconds(2), expect: Expectation, auth: PrometheusAuth? = nil) {
        self.url = url
        self.query = query
        self.timeout = timeout
        self.expect = expect
        self.auth = auth
    }
}

/// Credentials for a Prometheus server: read when the probe runs, from a file or the environment, never the scenario.
public enum PrometheusAuth: Sendable, Hashable, Codable {
    /// `Authorization: Bearer TOKEN`.
    case bearer(SecretSource)
    /// `Authorization: Basic base64(username:password)`.
    case basic(username: String, password: SecretSource)
}

/// Where a secret is read when it is needed: a file (first line, surrounding whitespace trimmed) or an environment variable.
public enum SecretSource: Sendable, Hashable, Codable, CustomStringConvertible {
    case file(String)
    case environment(String)

    public var description: String {
        switch self {
        case .file(let path): "file \(path)"
        case .environment(let name): "environment variable \(name)"
        }
    }
}

/// A burst of load: from `at` (after the method started) for `duration`, `rate` requests per second.
public struct LoadSpike: Sendable, Hashable, Codable {
    public var at: TimeSpan
    public var duration: TimeSpan
    public var rate: Double

    public init(at: TimeSpan, duration: TimeSpan, rate: Double) {
        self.at = at
        self.duration = duration
        self.rate = rate
    }

    private enum CodingKeys: String, CodingKey {
        case at, rate
        case duration = "for"
    }
}
