import ArgumentParser
import FaultlineCore

/// `faultline health`: asks an agent's `/healthz`, for container health checks and scripts.
struct HealthCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check that an agent answers on /healthz (exit 0) or not (exit 1); for container health checks.",
        discussion: """
            Needs no token: /healthz is the one route the agent serves without one. Exit 1 (not 3) when the agent \
            does not answer, as container health checks expect. An https:// agent's certificate is not checked \
            unless --ca-file is given: the check sends no secret and only asks whether the agent answers.

            Example:
              faultline health --url http://127.0.0.1:7465
              faultline health --url https://127.0.0.1:7465
            """
    )

    @Option(help: "The agent's base URL.") var url = "http://127.0.0.1:7465"
    @Option(help: "Seconds to wait for the answer.") var timeout = 3
    @Option(help: ArgumentHelp("Check an https:// agent's certificate against these CA certificates (PEM).", valueName: "file"), completion: .file())
    var caFile: String?
    @Option(help: ArgumentHelp("A client certificate (PEM), for an agent that requires mutual TLS (--tls-client-ca).", valueName: "file"), completion: .file())
    var clientCert: String?
    @Option(help: ArgumentHelp("The private key (PEM) of --client-cert.", valueName: "file"), completion: .file())
    var clientKey: String?

    func validate() throws {
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw ValidationError("--url '\(url)' is not an http:// or https:// URL")
        }
        guard timeout > 0 else { throw ValidationError("--timeout must be at least 1 second") }
        guard (clientCert == nil) == (clientKey == nil) else { throw ValidationError("--client-cert and --client-key go together") }
    }

    func run() async throws {
        var base = url
        while base.hasSuffix("/") { base.removeLast() }
        let client: AgentClient
        do {
            let http = try AgentClient.http(tls: ClientTLS(caFile: caFile, clientCert: clientCert, clientKey: clientKey, verify: caFile != nil))
            client = AgentClient(endpoint: AgentEndpoint(name: base, url: base), token: nil, http: http)
        } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitCode(1)
        }
        do {
            _ = try await client.send(.GET, "/healthz", timeout: .seconds(Int64(timeout)))
            print("ok \(base)/healthz")
        } catch {
            StandardError.write("faultline: \(base)/healthz: \(error.message)\n")
            throw ExitCode(1)
        }
    }
}
