import ArgumentParser
import FaultlineAgent
import FaultlineCore
import FaultlineEngine
import FaultlineSystem
import Foundation
import Logging
import ServiceLifecycle

/// `faultline agent`: the daemon a controller drives over HTTP (SPEC §3).
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Run the agent daemon: the HTTP API that runs, schedules, observes and aborts scenarios on this host.",
        discussion: """
            Runs go through the same engine, journal and guard as 'faultline run'. On SIGTERM, SIGINT, SIGHUP or SIGQUIT \
            every active fault is reverted before the agent exits; at start it reverts what a crashed \
            agent left. Listening on a non-loopback address needs a token of at least 32 characters \
            (--token-file, mode 0600, or env FAULTLINE_TOKEN; or named tokens with roles in --tokens-file) and HTTPS (--tls-cert, --tls-key; read again when \
            they change; --tls-client-ca for mutual TLS), or --insecure-http to serve the token in clear text. Port 0 picks a free port; the address is printed on stderr. As process 1 of \
            a PID namespace (a container's entrypoint), or with --supervise, it serves from a child process and \
            outlives it, so the guards revert a crashed server's faults before the container exits.

            Example:
              faultline agent --listen 0.0.0.0:7465 --token-file /etc/faultline/token \\
                --tls-cert /etc/faultline/tls/tls.crt --tls-key /etc/faultline/tls/tls.key
            """
    )

    @Option(help: "HOST:PORT to listen on.")
    var listen = "127.0.0.1:7465"

    @OptionGroup var token: TokenOptions

    @Option(help: ArgumentHelp("Named tokens with roles: 'NAME ROLE TOKEN' lines, ROLE read or operate (mode 0600; read again when it changes).", valueName: "file"), completion: .file())
    var tokensFile: String?

    @Option(help: ArgumentHelp("Serve HTTPS with this certificate chain (PEM); read again when it changes.", valueName: "file"), completion: .file())
    var tlsCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --tls-cert; read again when it changes.", valueName: "file"), completion: .file())
    var tlsKey: String?

    @Option(help: ArgumentHelp("Require client certificates signed by these CA certificates (PEM): mutual TLS.", valueName: "file"), completion: .file())
    var tlsClientCa: String?

    @Flag(help: "Serve plain HTTP on a non-loopback address: anyone on the path can read the bearer token.")
    var insecureHttp = false

    @Flag(help: "Serve from a child process and outlive it, so a crashed server's guards finish their reverts before this process exits (on by default as process 1 of a PID namespace; for containers with hostPID).")
    var supervise = false

    @Option(help: ArgumentHelp("How often a quiet event stream gets a keep-alive comment (default 15s).", visibility: .hidden))
    var sseKeepAlive: String?

    @Flag(help: "Accept scenarios whose prometheus probes read a token or password from this host's files or environment (off: refused, as a client could read any file through them).")
    var allowProbeCredentials = false

    @Flag(help: "Accept scenarios with command probes (off: refused, as they run any program as this agent's user, root).")
    var allowCommandProbes = false

    @OptionGroup var observability: ObservabilityOptions
    @OptionGroup var runtime: RuntimeOptions
    @OptionGroup var retention: RetentionOptions
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard tlsClientCa == nil || tlsCert != nil else { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
        guard !(insecureHttp && tlsCert != nil) else { throw ValidationError("--insecure-http and --tls-cert exclude each other") }
    }

    func run() async throws {
        if AgentSupervisor.shouldSupervise(asked: supervise) { throw ExitCode(AgentSupervisor.run(arguments: CommandLine.arguments)) }
        let address: (host: String, port: Int)
        let tls = tlsCert.map { AgentTLS(certificate: $0, key: tlsKey ?? $0, clientCA: tlsClientCa) }
        let credentials: AgentCredentials
        var madeTokenFile: String?
        do {
            address = try AgentConfiguration.parseListen(listen)
            let given = try token.token()
            if given != nil || tokensFile == nil { try AgentConfiguration.checkToken(given, host: address.host) }
            try AgentConfiguration.checkTransport(host: address.host, tls: tls != nil, insecure: insecureHttp)
            // The certificate and key, then the tokens file, are checked before anything else happens (no run is
            // reverted, no token made).
            _ = try tls?.serverConfiguration(note: { _ in })
            let minimum = AgentConfiguration.isLoopback(address.host) ? 1 : AgentConfiguration.minimumTokenLength
            var fixed: [AgentCredential] = []
            if let given {
                fixed = [AgentCredential(name: AgentCredentials.defaultName, role: .operate, token: given)]
            } else if tokensFile == nil {
                // Every listener needs a token, loopback too: other local users and containers sharing the pod's
                // loopback must not run commands as root. One made here goes where only this user reads it.
                let made = try TokenOptions.makeLocalAgentToken(stateDirectory: global.stateDirectory)
                fixed = [AgentCredential(name: AgentCredentials.defaultName, role: .operate, token: made)]
                madeTokenFile = TokenOptions.localAgentTokenFile(stateDirectory: global.stateDirectory)
            }
            credentials = try AgentCredentials(fixed: fixed, file: tokensFile, minimumLength: minimum) { say(.warning, .agent, "faultline agent: \($0)") }
        } catch {
            say(.error, .agent, "faultline: \(error)")
            throw ExitStatus.invalid
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var configuration = AgentConfiguration(host: address.host, port: address.port, credentials: credentials, stateDirectory: global.stateDirectory,
                                               executable: executable, forwarded: global.forwarded)
        configuration.tls = tls
        configuration.logFormat = global.logFormat == .json ? .json : .text
        configuration.logLevel = RunEvent.Level(rawValue: global.logLevel.rawValue) ?? .info
        do { configuration.grafana = try observability.grafana() } catch {
            say(.error, .agent, "faultline: \(error)")
            throw ExitStatus.invalid
        }
        configuration.notify = observability.notify
        configuration.runtimeSocket = runtime.runtimeSocket
        configuration.allowProbeCredentials = allowProbeCredentials
        configuration.allowCommandProbes = allowCommandProbes
        configuration.retention = retention.retention
        // A flood of idle connections must not take the descriptors a revert needs: the soft limit goes up to the
        // hard one, and connections stop being accepted OpenFileLimit.reserve short of it.
        let files = OpenFileLimit.raise()
        configuration.maxConnections = OpenFileLimit.connectionCap(soft: files.soft)
        if files.soft < 4_096 {
            say(.warning, .agent, "faultline: warning: the open-file limit is \(files.soft) (hard \(files.hard)): at most \(configuration.maxConnections) connections; raise it (systemd LimitNOFILE=65536, ulimit -n)")
        }
        let traces: TraceExport?
        do { traces = try observability.traces() } catch {
            say(.error, .agent, "faultline: cannot set up traces from --otlp-endpoint and the OTEL_* environment: \(error)")
            throw ExitStatus.invalid
        }
        configuration.tracer = traces?.tracer
        if let sseKeepAlive {
            guard let span = try? TimeSpan(parsing: sseKeepAlive), span.microseconds >= 100_000 else {
                say(.error, .agent, "faultline: --sse-keep-alive '\(sseKeepAlive)' is not a duration of at least 100ms")
                throw ExitStatus.invalid
            }
            configuration.keepAlive = .microseconds(span.microseconds)
        }
        let registry: RunRegistry
        do { registry = try RunRegistry(configuration: configuration) { StandardError.write($0) } } catch {
            say(.error, .agent, "faultline: \(error)")
            throw ExitStatus.preflightFailed
        }
        await registry.prepare()
        // The HTTP server's request metrics go to this agent's registry, beside its own.
        registry.metrics.bootstrapSwiftMetrics()
        var logger = Logger(label: "faultline.agent")
        logger.logLevel = .warning
        let host = address.host
        let tokenNote = madeTokenFile.map { " (token in \($0))" } ?? ""
        let scheme = configuration.tls == nil ? "http" : "https"
        let application: any Service
        do {
            application = try buildAgentApplication(registry: registry, configuration: configuration, logger: logger,
                                                    note: { say(.warning, .agent, "faultline agent: \($0)") }) { channel in
                let port = channel.localAddress?.port ?? address.port
                registry.serverStarted(port: port)
                let shown = host.contains(":") ? "[\(host)]" : host
                say(.info, .listening, "faultline agent listening on \(scheme)://\(shown):\(port)\(tokenNote)")
            }
        } catch {
            say(.error, .agent, "faultline: \(error)")
            throw ExitStatus.invalid
        }
        // Shut down in reverse order: the registry reverts every run before the HTTP server stops.
        let group = ServiceGroup(configuration: .init(services: [application, registry], gracefulShutdownSignals: [.sigterm, .sigint, .sighup, .sigquit], logger: logger))
        // The trace exporter runs beside the agent and sends its last spans once every run is reverted.
        let failure: String? = await traces.around {
            do { try await group.run() } catch { return "\(error)" }
            return nil
        }
        if let failure {
            say(.error, .shutdown, "faultline: the agent stopped: \(failure)")
            throw ExitStatus.preflightFailed
        }
        say(.info, .shutdown, "faultline agent stopped; every run was reverted")
    }

    /// One line of the agent's own (not a run's): as it is in text mode, as a JSON object with `--log-format json`.
    func say(_ level: RunEvent.Level, _ event: RunEvent.Name, _ text: String) {
        guard global.logFormat == .json else { return StandardError.write(text + "\n") }
        EventLog(format: .json, run: "-", scenario: "-", minimum: .debug) { StandardError.write($0) }.log(.note(level, event, text))
    }
}
