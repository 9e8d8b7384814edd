import ArgumentParser
import FaultlineCore
import Foundation

/// Which agents a controller command talks to, and with what token.
struct ControllerOptions: ParsableArguments {
    @Option(name: .customLong("agent"), help: "An agent URL (repeatable; env FAULTLINE_AGENT, a comma list). Default http://127.0.0.1:7465.")
    var agentURLs: [String] = []

    @Option(name: .customLong("agents"), help: ArgumentHelp(
        "An inventory file (one agent per line, 'URL' or 'NAME URL'; # comments), or dns:NAME:PORT: one agent per A/AAAA record of NAME (a headless Service), over https with the certificate checked for NAME (dns:http://NAME:PORT for plain HTTP).",
        valueName: "file|dns:NAME:PORT"))
    var inventory: String?

    @OptionGroup var token: TokenOptions
    @OptionGroup var tls: ClientTLSOptions

    /// The agents, in the order given; a usage error names a bad entry.
    func endpoints() throws(FaultlineError) -> [AgentEndpoint] {
        var entries: [(String?, String)] = agentURLs.map { (nil, $0) }
        var discovered: [AgentEndpoint] = []
        if let inventory, inventory.hasPrefix("dns:") {
            discovered = try AgentDiscovery.parse(inventory).endpoints()
        } else if let inventory {
            guard let text = try? String(contentsOfFile: inventory, encoding: .utf8) else {
                throw FaultlineError(.usage, "cannot read inventory file '\(inventory)'")
            }
            for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)?
                    .trimmingCharacters(in: .whitespaces) ?? ""
                if line.isEmpty { continue }
                let words = line.split(whereSeparator: \.isWhitespace).map(String.init)
                switch words.count {
                case 1: entries.append((nil, words[0]))
                case 2: entries.append((words[0], words[1]))
                default: throw FaultlineError(.usage, "\(inventory):\(number + 1): expected 'URL' or 'NAME URL', got '\(line)'")
                }
            }
        }
        if entries.isEmpty, discovered.isEmpty, let fromEnvironment = ProcessInfo.processInfo.environment["FAULTLINE_AGENT"], !fromEnvironment.isEmpty {
            entries = fromEnvironment.split(separator: ",").map { (nil, $0.trimmingCharacters(in: .whitespaces)) }
        }
        if entries.isEmpty, discovered.isEmpty { entries = [(nil, "http://127.0.0.1:7465")] }
        var seen: Set<String> = []
        var endpoints: [AgentEndpoint] = []
        for (name, raw) in entries {
            let url = raw.contains("://") ? raw : "http://" + raw
            guard let parsed = URLComponents(string: url), ["http", "https"].contains(parsed.scheme ?? ""), let host = parsed.host, !host.isEmpty else {
                throw FaultlineError(.usage, "agent '\(raw)' is not a URL like http://HOST:PORT")
            }
            let base = url.hasSuffix("/") ? String(url.dropLast()) : url
            guard seen.insert(base).inserted else { continue }
            endpoints.append(AgentEndpoint(name: name ?? "\(host):\(parsed.port ?? 7465)", url: base))
        }
        for endpoint in discovered where seen.insert(endpoint.url + " " + (endpoint.address ?? "")).inserted {
            endpoints.append(endpoint)
        }
        return endpoints
    }

    /// The local agent's own token file, when it exists and this user may read it.
    static var readableLocalTokenFile: String? {
        let path = TokenOptions.localAgentTokenFile(stateDirectory: GlobalOptions.defaultStateDirectory)
        return FileManager.default.isReadableFile(atPath: path) ? path : nil
    }

    /// A client per agent, or exit 2 with the reason.
    func clients() throws -> [AgentClient] {
        do {
            let token = try token.token()
            // Without one, a loopback agent is asked with the token it made for itself, if this user can read it.
            let local = token == nil ? try TokenOptions.secret(file: Self.readableLocalTokenFile, environment: "") : nil
            let settings = try tls.settings()
            return try endpoints().map { endpoint in
                AgentClient(endpoint: endpoint, token: token ?? (endpoint.isLoopback ? local : nil),
                            http: try AgentClient.http(tls: settings, dnsOverride: endpoint.dnsOverride))
            }
        } catch let error as FaultlineError where error.code == .preflight {
            // No agent behind a DNS name: nothing could be reached (SPEC §2: unreachable is 3).
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.preflightFailed
        } catch {
            StandardError.write("faultline: \(error)\n")
            throw ExitStatus.invalid
        }
    }
}

/// How a controller checks an https:// agent and, for mutual TLS, proves who it is.
struct ClientTLSOptions: ParsableArguments {
    @Option(help: ArgumentHelp("CA certificates (PEM) an https:// agent's certificate must chain to (env FAULTLINE_CA_FILE; default: the system's).", valueName: "file"), completion: .file())
    var caFile: String?

    @Option(help: ArgumentHelp("A client certificate (PEM) for agents that require mutual TLS (env FAULTLINE_CLIENT_CERT).", valueName: "file"), completion: .file())
    var clientCert: String?

    @Option(help: ArgumentHelp("The private key (PEM) of --client-cert (env FAULTLINE_CLIENT_KEY).", valueName: "file"), completion: .file())
    var clientKey: String?

    /// The settings from the options, else the environment; a usage error names a file that cannot be used.
    func settings() throws(FaultlineError) -> ClientTLS {
        let environment = ProcessInfo.processInfo.environment
        func pick(_ given: String?, _ name: String) -> String? {
            given ?? environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }
        let settings = ClientTLS(caFile: pick(caFile, "FAULTLINE_CA_FILE"), clientCert: pick(clientCert, "FAULTLINE_CLIENT_CERT"),
                                 clientKey: pick(clientKey, "FAULTLINE_CLIENT_KEY"))
        guard (settings.clientCert == nil) == (settings.clientKey == nil) else {
            throw FaultlineError(.usage, "--client-cert and --client-key go together (or FAULTLINE_CLIENT_CERT and FAULTLINE_CLIENT_KEY)")
        }
        return settings
    }
}

/// Runs one request per agent concurrently; results in the agents' order.
func eachAgent<T: Sendable>(_ clients: [AgentClient], _ body: @escaping @Sendable (AgentClient) async throws(AgentFailure) -> T) async -> [(AgentClient, Result<T, AgentFailure>)] {
    await withTaskGroup(of: (Int, Result<T, AgentFailure>).self) { group in
        for (index, client) in clients.enumerated() {
            group.addTask {
                do throws(AgentFailure) { return (index, .success(try await body(client))) } catch { return (index, .failure(error)) }
            }
        }
        var results: [(Int, Result<T, AgentFailure>)] = []
        for await result in group { results.append(result) }
        return results.sorted { $0.0 < $1.0 }.map { (clients[$0.0], $0.1) }
    }
}

/// The worst of several exit codes: 4 > 3 > 2 > 130 > 5 > 1 > 0.
func worstExit(_ codes: [Int32]) -> Int32 {
    let rank: [Int32: Int] = [0: 0, 1: 1, 5: 2, 130: 3, 2: 4, 3: 5, 4: 6]
    return codes.max { (rank[$0] ?? 3) < (rank[$1] ?? 3) } ?? 0
}

/// A plain text table with aligned columns; control characters an agent sent (escape sequences, new lines) are shown
/// as '?', so no answer can rewrite the operator's terminal.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = ([header] + rows).map { row in
        row.map { cell in String(cell.unicodeScalars.map { CharacterSet.controlCharacters.contains($0) ? "?" : Character($0) }) }
    }
    let widths = header.indices.map { column in all.map { $0.indices.contains(column) ? $0[column].count : 0 }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { index, cell in
            index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}
