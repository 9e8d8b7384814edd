import AsyncHTTPClient
import FaultlineAgent
import FaultlineCore
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import Synchronization

/// One agent the controller talks to.
struct AgentEndpoint: Sendable, Hashable {
    /// What tables call it: the inventory name, else host:port.
    var name: String
    /// Base URL without a trailing slash, e.g. http://10.0.0.5:7465.
    var url: String
    /// The address to connect to instead of the URL's host (an agent found through DNS): the URL's host is still
    /// the name its TLS certificate is checked for and the server name sent.
    var address: String? = nil

    /// The host name to address mapping of the HTTP client that talks to it (empty: the URL's host is resolved).
    var dnsOverride: [String: String] {
        guard let address, let host = URLComponents(string: url)?.host else { return [:] }
        return [host: address]
    }

    /// Where it is, for messages: the URL, and the address when it was found through DNS.
    var location: String { address.map { "\(url) (address \($0))" } ?? url }

    /// Whether it is an agent on this host's loopback.
    var isLoopback: Bool {
        guard let host = address ?? URLComponents(string: url)?.host else { return false }
        return AgentConfiguration.isLoopback(host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")))
    }
}

/// Why a request to an agent did not give what was asked.
struct AgentFailure: Error, Sendable, CustomStringConvertible {
    enum Kind: Sendable { case unreachable, refused }
    var kind: Kind
    var status: Int
    var code: String
    var message: String
    var details: [String]

    static func unreachable(_ message: String) -> AgentFailure {
        AgentFailure(kind: .unreachable, status: 0, code: "unreachable", message: message, details: [])
    }

    var description: String {
        ([message] + details.map { "  " + $0 }).joined(separator: "\n")
    }

    /// What a table shows in the state column.
    var label: String { kind == .unreachable ? "unreachable" : "error \(status)" }

    /// The agent's node runs none of the scenario's pods (422 `no_pods_here`): nothing to do there.
    var isNoPodsHere: Bool { kind == .refused && code == "no_pods_here" }

    /// The exit code it stands for (SPEC §2): unreachable, unauthorised, conflicting or failed preflight 3; bad input 2.
    var exitCode: Int32 {
        switch (kind, status) {
        case (.unreachable, _): 3
        case (_, 400), (_, 404), (_, 413): 2
        default: 3
        }
    }
}

/// How the controller checks https:// agents: the CA certificates their certificates must chain to (nil: the
/// system's trust store) and, for agents that require mutual TLS, its own certificate and key.
struct ClientTLS: Sendable, Hashable {
    var caFile: String?
    var clientCert: String?
    var clientKey: String?
    /// Whether the agent's certificate is checked at all: only `faultline health`, which sends no secret, skips it.
    var verify = true

    /// The TLS configuration (TLS 1.2 at least, host names checked); a usage error names a file that cannot be used.
    func configuration() throws(FaultlineError) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile { configuration.trustRoots = .certificates(try TLSIdentity.certificates(caFile, option: "--ca-file")) }
        if !verify { configuration.certificateVerification = .none }
        if let clientCert, let clientKey {
            let identity = try TLSIdentity.load(certificate: clientCert, key: clientKey, options: ("--client-cert", "--client-key"))
            configuration.certificateChain = identity.chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(identity.key)
        }
        return configuration
    }
}

/// Talks JSON over HTTP or HTTPS to one agent's API (SPEC §3).
struct AgentClient: Sendable {
    let endpoint: AgentEndpoint
    let token: String?
    let http: HTTPClient

    static let decoder = JSONDecoder.api

    /// What an HTTP client is made for: the TLS settings and where names point (an agent found through DNS).
    struct ClientKey: Hashable {
        var tls: ClientTLS
        var dnsOverride: [String: String]
    }

    static let clients = Mutex<[ClientKey: HTTPClient]>([:])

    /// One HTTP client per TLS setting for the process: a refused or unanswered connection fails fast (no retries
    /// until the deadline), so an unreachable agent is named at once and the others go on.
    static func http(tls: ClientTLS, dnsOverride: [String: String] = [:]) throws(FaultlineError) -> HTTPClient {
        let key = ClientKey(tls: tls, dnsOverride: dnsOverride)
        if let made = clients.withLock({ $0[key] }) { return made }
        var configuration = HTTPClient.Configuration(tlsConfiguration: try tls.configuration())
        configuration.dnsOverride = dnsOverride
        configuration.timeout = .init(connect: .seconds(3))
        configuration.connectionPool.retryConnectionEstablishment = false
        return clients.withLock { clients in
            if let made = clients[key] { return made }
            let made = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = made
            return made
        }
    }

    /// Sends one request; the body of a 2xx answer (`open` turns any other into the agent's error).
    func send(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil,
              headers: [(String, String)] = [], timeout: TimeAmount = .seconds(10)) async throws(AgentFailure) -> Data {
        let response = try await open(method, path, query: query, body: body, headers: headers, timeout: timeout)
        do {
            return Data(try await response.body.collect(upTo: 64 << 20).readableBytesView)
        } catch {
            throw .unreachable("\(endpoint.name): the answer broke off: \(error)")
        }
    }

    /// Sends a request and decodes the answer.
    func get<T: Decodable>(_ type: T.Type, _ path: String, method: HTTPMethod = .GET, query: [(String, String)] = [], body: Data? = nil,
                           headers: [(String, String)] = []) async throws(AgentFailure) -> T {
        let data = try await send(method, path, query: query, body: body, headers: headers)
        do { return try Self.decoder.decode(T.self, from: data) } catch {
            throw AgentFailure(kind: .refused, status: 200, code: "bad_answer", message: "\(endpoint.name) answered \(path) with something unexpected: \(error)", details: [])
        }
    }

    /// Opens a request and returns the response head; the body is left to read (event streams).
    func open(_ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: Data? = nil,
              headers: [(String, String)] = [], timeout: TimeAmount) async throws(AgentFailure) -> HTTPClientResponse {
        var components = URLComponents(string: endpoint.url + path)
        if !query.isEmpty { components?.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
        guard let url = components?.string else { throw .unreachable("\(endpoint.name): '\(endpoint.url)' is not a URL") }
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response: HTTPClientResponse
        do { response = try await http.execute(request, timeout: timeout) } catch {
            throw .unreachable("\(endpoint.name) is unreachable at \(endpoint.location): \(reason(error))")
        }
        if !(200..<300).contains(Int(response.status.code)) {
            let data = (try? await response.body.collect(upTo: 1 << 20)).map { Data($0.readableBytesView) } ?? Data()
            throw Self.failure(status: Int(response.status.code), data)
        }
        return response
    }

    func reason(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("connectTimeout") || text.contains("deadlineExceeded") { return "timed out" }
        if text.contains("connection refused") || text.contains("ECONNREFUSED") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("failedToValidateHostname") {
            return "its TLS certificate is not for the host name of this URL (use a name or address the certificate lists)"
        }
        if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("unableToValidateCertificate") {
            return "its TLS certificate is not trusted (pass --ca-file with the CA certificate that signed it)"
        }
        if text.contains("CERTIFICATE_REQUIRED") {
            return "it requires a client certificate (mutual TLS): pass --client-cert and --client-key"
        }
        if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG") {
            return "it does not speak TLS: use an http:// URL (\(text))"
        }
        if endpoint.url.hasPrefix("http://"), text.contains("remoteConnectionClosed") || text.contains("invalidEOFState") || text.contains("HPE_") {
            return "it closed the connection: if the agent serves HTTPS, use an https:// URL (\(text))"
        }
        if text.contains("TLSV1_ALERT") || text.contains("SSLV3_ALERT") || text.contains("handshakeFailed") {
            return "the TLS handshake failed; if it requires mutual TLS, pass --client-cert and --client-key signed by a CA it trusts (\(text))"
        }
        return text
    }

    static func failure(status: Int, _ data: Data) -> AgentFailure {
        if let body = try? decoder.decode(AgentError.Body.self, from: data) {
            return AgentFailure(kind: .refused, status: status, code: body.error.code, message: body.error.message,
                                details: (body.error.details ?? []).map(\.message))
        }
        return AgentFailure(kind: .refused, status: status, code: "http_\(status)",
                            message: "HTTP \(status), and not a faultline agent's error (is this the agent's address?)", details: [])
    }
}
