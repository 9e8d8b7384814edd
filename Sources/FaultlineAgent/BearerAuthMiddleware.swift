import Hummingbird

/// Requires `Authorization: Bearer <token>` on every request but `GET /healthz`, compared in constant time.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard !(request.method == .get && request.uri.path == "/healthz") else {
            return try await next(request, context)
        }
        guard let header = request.headers[.authorization], let presented = BearerScheme.token(in: header) else {
            throw AgentError(.unauthorized, "unauthorized", "this agent needs 'Authorization: Bearer <token>'")
        }
        guard ConstantTime.equal(presented, token) else {
            throw AgentError(.unauthorized, "unauthorized", "the bearer token is wrong")
        }
        return try await next(request, context)
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
