import FaultlineCore
import FaultlineEngine
import FaultlineJournal
import FaultlineSystem
import Foundation
import Tracing

/// How an agent is set up: where it listens, its token, its state, and how it starts helpers.
public struct AgentConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The bearer tokens, one of which every request but `GET /healthz` needs (loopback too), with their roles.
    public var credentials: AgentCredentials
    /// HTTPS settings; nil serves plain HTTP (loopback, or another address with `--insecure-http`).
    public var tls: AgentTLS?
    public var stateDirectory: String
    /// This executable, to start guards and probe helpers.
    public var executable: String
    /// Options passed on to a guard process (`--state-dir ...`).
    public var forwarded: [String]
    public var logFormat: EventLog.Format = .text
    public var logLevel: RunEvent.Level = .info
    /// The largest request body accepted (a scenario).
    public var maxBodySize = 1 << 20
    /// The most client connections open at once (more wait in the listen queue, taking no descriptor), so that
    /// descriptors are left for reverts; `faultline agent` sets it from its open-file limit.
    public var maxConnections = 1_024 - OpenFileLimit.reserve
    /// A connection with no request under way for this long is closed (also one that never sends a request).
    public var idleTimeout: Duration = .seconds(10)
    /// How often leases and schedules are checked.
    public var tick: Duration = .milliseconds(100)
    /// How often an open event stream of a quiet run gets a comment line, so proxies do not close it as idle.
    public var keepAlive: Duration = .seconds(15)
    /// Where each run's fault windows and aborts become annotations; nil: nowhere.
    public var grafana: GrafanaAnnotator.Settings?
    /// Webhooks that get every run's messages, besides its scenario's `notify` (`--notify`).
    public var notify: [String] = []
    /// Where runs' spans go; nil: no traces.
    public var tracer: (any Tracer)?
    /// Whether submitted scenarios may name credentials (a prometheus probe's token or password) that the agent
    /// reads from its own files and environment (`--allow-probe-credentials`); off, such scenarios are refused.
    public var allowProbeCredentials = false
    /// Whether submitted scenarios may have command probes, which run any program as the agent's user
    /// (`--allow-command-probes`); off, such scenarios are refused.
    public var allowCommandProbes = false
    /// How many finished runs are kept, and for how long (`--keep-runs`, `--keep-for`).
    public var retention = Retention.standard
    /// The container runtime's socket that container targets are found through (`--runtime-socket`); nil: the usual places.
    public var runtimeSocket: String?
    /// Changes every run's session settings before it is prepared: in-process tests give fake drivers, probes, facts
    /// and preflight here. nil in production.
    public var sessionSettings: (@Sendable (inout RunSession.Settings) -> Void)?

    public init(host: String, port: Int, credentials: AgentCredentials, stateDirectory: String, executable: String, forwarded: [String]) {
        self.host = host
        self.port = port
        self.credentials = credentials
        self.stateDirectory = stateDirectory
        self.executable = executable
        self.forwarded = forwarded
    }

    /// Whether the address only accepts connections from this host.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The fewest characters a token needs on an address other hosts can reach.
    public static let minimumTokenLength = 32

    /// Refuses a non-loopback listener without a token, or with one shorter than `minimumTokenLength`; a usage error saying what to do.
    public static func checkToken(_ token: String?, host: String) throws(FaultlineError) {
        guard !isLoopback(host) else { return }
        guard let token else {
            throw FaultlineError(.usage, "refusing to listen on \(host) without a token: pass --token-file F (mode 0600) or set FAULTLINE_TOKEN")
        }
        guard token.utf8.count >= minimumTokenLength else {
            throw FaultlineError(.usage, "refusing to listen on \(host) with a token of \(token.utf8.count) characters: use at least \(minimumTokenLength), e.g. from 'openssl rand -hex 32'")
        }
    }

    /// Refuses plain HTTP on an address other hosts can reach unless `insecure` (`--insecure-http`) says the
    /// operator accepts that anyone on the path reads the bearer token: a usage error saying what to do.
    public static func checkTransport(host: String, tls: Bool, insecure: Bool) throws(FaultlineError) {
        guard !isLoopback(host), !tls, !insecure else { return }
        throw FaultlineError(.usage, "refusing to serve plain HTTP on \(host): anyone on the path could read the bearer token; pass --tls-cert and --tls-key to serve HTTPS, or --insecure-http to accept that")
    }

    /// Splits `HOST:PORT` or `[V6]:PORT` (or a bare port); throws a usage error naming the bad value.
    public static func parseListen(_ text: String) throws(FaultlineError) -> (host: String, port: Int) {
        var host = "127.0.0.1"
        var portText = text
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = String(text[text.index(after: close)...]).trimmingPrefix(":").description
        } else if let colon = text.lastIndex(of: ":") {
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else {
            throw FaultlineError(.usage, "listen address '\(text)' is not HOST:PORT (e.g. 127.0.0.1:7465 or [::1]:7465)")
        }
        return (host, port)
    }
}
