import FaultlineJournal
import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// What the agent knows of a request besides the request itself: the client's address, and the token's
/// credential once it has been checked.
public struct AgentRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?
    public var caller: AgentCredential?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}

/// Checks every request but `GET /healthz`: `Authorization: Bearer <token>` must name a known token (compared in
/// constant time) whose role allows the method (`read`: GET only), else 401 or 403. Every POST and DELETE —
/// refused ones too — goes into the audit log with the token's name, the client's address, the action, the run
/// or schedule and the answer.
struct AccessMiddleware: RouterMiddleware {
    typealias Context = AgentRequestContext
    let credentials: AgentCredentials
    let audit: AuditLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let method = request.method.rawValue
        let path = request.uri.path
        guard !(request.method == .get && path == "/healthz") else {
            return try await next(request, context)
        }
        let mutating = !(method == "GET" || method == "HEAD")
        var context = context
        do {
            guard let header = request.headers[.authorization], let presented = BearerScheme.token(in: header) else {
                throw AgentError(.unauthorized, "unauthorized", "this agent needs 'Authorization: Bearer <token>'")
            }
            guard let caller = credentials.identify(presented) else {
                throw AgentError(.unauthorized, "unauthorized", "the bearer token is wrong")
            }
            context.caller = caller
            guard caller.role.allows(method: method) else {
                throw AgentError(.forbidden, "forbidden", "token '\(caller.name)' has the role \(caller.role.rawValue), which may not \(method) \(path): that needs the role operate")
            }
            let response = try await next(request, context)
            if mutating { audit.record(request, context: context, status: Int(response.status.code), result: "ok", created: response.headers[.location]) }
            return response
        } catch {
            if mutating {
                let (status, code) = AuditLog.outcome(of: error)
                audit.record(request, context: context, status: status, result: code, created: nil)
            }
            throw error
        }
    }
}

/// Writes the agent's audit entries into the journal. Requests without a known token are recorded at most
/// `refusalsPerSecond` a second, so a flood of them cannot fill the state disk; the next one recorded says how
/// many were left out.
final class AuditLog: Sendable {
    let journal: Journal
    let warn: @Sendable (String) -> Void
    static let refusalsPerSecond = 20
    let refusals = Mutex<(second: Int, count: Int, skipped: Int)>((0, 0, 0))

    init(journal: Journal, warn: @escaping @Sendable (String) -> Void) {
        self.journal = journal
        self.warn = warn
    }

    func record(_ request: Request, context: AgentRequestContext, status: Int, result: String, created: String?) {
        var result = result
        if context.caller == nil {
            let now = Int(Date().timeIntervalSince1970)
            let skipped = refusals.withLock { state -> Int? in
                if state.second != now { state = (now, 0, state.skipped) }
                state.count += 1
                guard state.count <= Self.refusalsPerSecond else {
                    state.skipped += 1
                    return nil
                }
                defer { state.skipped = 0 }
                return state.skipped
            }
            guard let skipped else { return }
            if skipped > 0 { result += "; \(skipped) more requests without a known token were not recorded one by one" }
        }
        let (action, target) = Self.action(method: request.method.rawValue, path: request.uri.path,
                                           dryRun: request.uri.queryParameters["dryRun"].map { $0 != "false" && $0 != "0" } ?? false,
                                           created: created)
        let entry = AuditEntry(time: Date(), token: context.caller?.name ?? "-", role: context.caller?.role.rawValue,
                               peer: context.remoteAddress.map(Self.describe) ?? "-", action: action, target: target, status: status, result: result)
        do { try journal.audit(entry) } catch {
            warn("cannot write the audit entry (\(action) \(target ?? "") by \(entry.token) from \(entry.peer): \(result)): \(error)")
        }
    }

    /// The action a mutating request stands for, and the run or schedule it names (or created: its Location).
    static func action(method: String, path: String, dryRun: Bool, created: String?) -> (String, String?) {
        let parts = path.split(separator: "/").map(String.init)
        let createdID = created.flatMap { $0.split(separator: "/").last.map(String.init) }
        switch (method, parts.count, parts.first == "v1" ? Array(parts.dropFirst()) : []) {
        case ("POST", 2, ["runs"]): return (dryRun ? "dry-run" : "submit", createdID)
        case ("POST", 4, let rest) where rest.first == "runs" && rest.last == "abort": return ("abort", Self.clean(rest[1]))
        case ("POST", 4, let rest) where rest.first == "runs" && rest.last == "lease": return ("lease", Self.clean(rest[1]))
        case ("POST", 2, ["abort"]): return ("abort-all", nil)
        case ("POST", 2, ["schedules"]): return ("schedule", createdID)
        case ("DELETE", 3, let rest) where rest.first == "schedules": return ("unschedule", Self.clean(rest[1]))
        default: return ("\(method) \(String(path.prefix(100)))", nil)
        }
    }

    /// The id as the routes read it, or `(not an id)`: what a client puts in a path never reaches the log raw.
    static func clean(_ id: String) -> String {
        let decoded = id.removingPercentEncoding ?? id
        guard (1...64).contains(decoded.count), decoded.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return "(not an id)" }
        return decoded
    }

    static func describe(_ address: SocketAddress) -> String {
        switch address {
        case .v6: "[\(address.ipAddress ?? "?")]:\(address.port ?? 0)"
        default: "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
        }
    }

    /// The status and error code an error answers with.
    static func outcome(of error: any Error) -> (Int, String) {
        switch error {
        case let error as AgentError: (Int(error.status.code), error.code)
        case let error as HTTPError: (Int(error.status.code), "http_\(error.status.code)")
        default: (500, "internal")
        }
    }
}

/// The `Bearer` scheme of an `Authorization` header, named in any case (RFC 7235: `bearer`, `BEARER`).
enum BearerScheme {
    /// The token of an `Authorization` value, or nil when its scheme is another one or the token is missing.
    static func token(in header: String) -> [UInt8]? {
        let scheme = "bearer "
        guard header.prefix(scheme.count).lowercased() == scheme else { return nil }
        let token = Array(header.dropFirst(scheme.count).drop { $0 == " " }.utf8)
        return token.isEmpty ? nil : token
    }
}

/// Secrets compared without stopping at the first difference, so timing does not tell how much of a guess was right.
enum ConstantTime {
    static func equal(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        // The whole length difference, not its low byte: a token followed by 256 more bytes is a different token.
        var difference = UInt(bitPattern: given.count ^ expected.count)
        for index in expected.indices {
            difference |= UInt(expected[index] ^ (index < given.count ? given[index] : 0))
        }
        return difference == 0
    }
}

/// Gives every error the API's JSON shape, also the router's own (404 for an unknown path, 413, 405).
struct ErrorShapeMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as AgentError {
            throw error
        } catch let error as HTTPError where error.status == .notFound && !AgentRoutes.methods(for: request.uri.path).isEmpty {
            let allowed = AgentRoutes.methods(for: request.uri.path)
            var refusal = AgentError(.methodNotAllowed, "method_not_allowed",
                                     "\(request.method) is not allowed on \(request.uri.path) (allowed: \(allowed.joined(separator: ", ")))")
            refusal.allow = allowed
            throw refusal
        } catch let error as HTTPError {
            let code = switch error.status {
            case .notFound: "not_found"
            case .contentTooLarge: "too_large"
            case .methodNotAllowed: "method_not_allowed"
            case .badRequest: "bad_request"
            default: "http_\(error.status.code)"
            }
            throw AgentError(error.status, code, error.body ?? error.status.reasonPhrase.lowercased())
        }
    }
}
