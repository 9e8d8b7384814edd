import FaultlineCore
import FaultlineEngine
import FaultlineJournal
import FaultlineSystem
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore

/// Builds the agent's HTTP application (SPEC §3), HTTPS when `configuration.tls` is set; shared by `faultline agent`
/// and the tests. A usage error names a certificate or key file that cannot be used.
public func buildAgentApplication(registry: RunRegistry, configuration: AgentConfiguration, logger: Logger,
                                  note: @escaping @Sendable (String) -> Void = { _ in },
                                  onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) throws -> some ApplicationProtocol {
    let router = Router(context: AgentRequestContext.self)
    // Outermost, so every request counts with the status its client got, refusals included. It records through
    // swift-metrics: into the agent's registry once `faultline agent` has bootstrapped it, nowhere before.
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ErrorShapeMiddleware())
    router.add(middleware: AccessMiddleware(credentials: configuration.credentials, audit: registry.auditLog))
    AgentRoutes(registry: registry, maxBodySize: configuration.maxBodySize).add(to: router)
    let idle = configuration.idleTimeout.components
    let http = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000)))
    return Application(
        router: router,
        server: try configuration.tls.map { tls in try .tls(http, tlsConfiguration: tls.serverConfiguration(note: note)) } ?? http,
        configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: "faultline",
                                                availableConnectionsDelegate: .maximum(configuration.maxConnections, logger: logger)),
        onServerRunning: onServerRunning,
        logger: logger)
}

/// The routes of the agent's API.
struct AgentRoutes: Sendable {
    let registry: RunRegistry
    let maxBodySize: Int

    func add(to router: Router<AgentRequestContext>) {
        router.get("/healthz") { _, _ in Self.text("ok\n") }
        router.get("/metrics") { _, _ in
            registry.measureState()
            return Self.text(registry.metrics.exposition(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        router.get("/v1/capabilities") { _, _ in try Self.json(await Preflight().checkAllTypes()) }
        router.post("/v1/runs") { request, _ in try await submit(request) }
        router.get("/v1/runs") { request, _ in
            var parameters: [String: String] = [:]
            for (key, value) in request.uri.queryParameters where parameters[String(key)] == nil { parameters[String(key)] = String(value) }
            return Self.data(registry.listJSON(try RunQuery(parameters: parameters)), type: "application/json")
        }
        router.get("/v1/runs/:id") { _, context in Self.data(try registry.statusJSON(try Self.id(context)), type: "application/json") }
        router.get("/v1/runs/:id/events") { request, context in
            try events(request, id: try Self.id(context), follow: try Self.flag(request.uri.queryParameters["follow"].map(String.init), name: "follow", default: true))
        }
        router.get("/v1/runs/:id/report") { request, context in
            let name = request.uri.queryParameters["format"].map(String.init) ?? "json"
            guard let format = RunReport.Format(rawValue: name) else {
                throw AgentError.badRequest("'format' must be one of \(RunReport.Format.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name.prefix(40))'")
            }
            return Self.data(try registry.report(try Self.id(context), format: format), type: format.contentType)
        }
        router.post("/v1/runs/:id/abort") { _, context in try Self.json(registry.abort(try Self.id(context))) }
        router.post("/v1/runs/:id/lease") { request, context in
            try Self.json(registry.renew(try Self.id(context), length: try Self.span(request, "lease")))
        }
        router.post("/v1/abort") { _, _ in try Self.json(AbortAll(aborted: registry.abortAll())) }
        router.post("/v1/schedules") { request, _ in
            var request = request
            let body = try await Self.body(&request, limit: maxBodySize)
            let decoded: ScheduleRequest
            do { decoded = try JSONDecoder().decode(ScheduleRequest.self, from: body) } catch {
                throw AgentError.badRequest("the body must be a JSON object {scenario, cron, timeZone?, lease?, id?}: \(Self.describe(error))")
            }
            let created = try registry.schedule(decoded, source: Self.source(request))
            var response = try Self.json(created, status: .created)
            response.headers[.location] = "/v1/schedules/\(created.id)"
            return response
        }
        router.get("/v1/schedules") { _, _ in try Self.json(ScheduleList(schedules: registry.listSchedules())) }
        router.delete("/v1/schedules/:id") { _, context in
            try registry.unschedule(try Self.id(context))
            return Response(status: .noContent)
        }
        router.get("/v1/audit") { request, _ in
            let parameters = request.uri.queryParameters
            let after = try parameters["after"].map { try Self.number(String($0), name: "after", range: 0...Int.max, default: 0) }
            let limit = try Self.number(parameters["limit"].map(String.init), name: "limit", range: 1...1_000, default: 100)
            return try Self.json(AuditList(entries: registry.audit(after: after.map(Int64.init), limit: limit)))
        }
    }

    /// Every path of the API and its methods, for 405 answers with an Allow header.
    static let table: [(path: [String], methods: [String])] = [
        (["healthz"], ["GET"]), (["metrics"], ["GET"]), (["v1", "capabilities"], ["GET"]),
        (["v1", "runs"], ["GET", "POST"]), (["v1", "runs", ":id"], ["GET"]), (["v1", "runs", ":id", "events"], ["GET"]),
        (["v1", "runs", ":id", "report"], ["GET"]), (["v1", "runs", ":id", "abort"], ["POST"]), (["v1", "runs", ":id", "lease"], ["POST"]),
        (["v1", "abort"], ["POST"]), (["v1", "schedules"], ["GET", "POST"]), (["v1", "schedules", ":id"], ["DELETE"]),
        (["v1", "audit"], ["GET"]),
    ]

    /// The methods `path` has; empty when the path is not part of the API.
    static func methods(for path: String) -> [String] {
        let parts = path.split(separator: "/").map(String.init)
        return table.first { entry in
            entry.path.count == parts.count && zip(entry.path, parts).allSatisfy { $0.hasPrefix(":") || $0 == $1 }
        }?.methods ?? []
    }

    struct ScheduleList: Codable { var schedules: [ScheduleStatus] }
    struct AbortAll: Codable { var aborted: [RunStatus] }
    struct AuditList: Codable { var entries: [AuditEntry] }

    func submit(_ request: Request) async throws -> Response {
        var request = request
        let parameters = request.uri.queryParameters
        let body = try await Self.body(&request, limit: maxBodySize)
        guard let text = String(data: body, encoding: .utf8), !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw AgentError.badRequest("the body must be a scenario (YAML or JSON text)")
        }
        let source = Self.source(request)
        let dryRun = try Self.flag(parameters["dryRun"].map(String.init), name: "dryRun")
        let lease = try Self.span(request, "lease")
        var at: Date?
        if let text = parameters["at"].map(String.init) {
            guard let parsed = Self.parseTime(text) else {
                throw AgentError.badRequest("'at' value '\(text)' is not an RFC 3339 time such as 2026-11-28T09:00:00Z")
            }
            at = parsed
        }
        if dryRun {
            let (planJSON, preflight) = try await registry.dryRun(text, source: source)
            let preflightJSON = String(decoding: try JSONEncoder.api.encode(preflight), as: UTF8.self)
            return Self.data(Data("{\"dryRun\":true,\"plan\":\(planJSON),\"preflight\":\(preflightJSON)}".utf8), type: "application/json")
        }
        let created = try await registry.submit(text, options: .init(at: at, lease: lease, source: source))
        var response = try Self.json(created, status: .created)
        response.headers[.location] = "/v1/runs/\(created.id)"
        return response
    }

    func events(_ request: Request, id: String, follow: Bool) throws -> Response {
        let run = try registry.run(id)
        let after = request.headers[HTTPField.Name("Last-Event-ID")!].flatMap { Int($0) } ?? 0
        let (backlog, live) = follow ? run.subscribe() : (run.subscribe(follow: false).backlog, nil)
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        // One `end` per stream: the engine's own end event is not sent, as the closing `end` carries the final status
        // (its state, exit code and reason say the same).
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            for event in backlog where event.seq > after && event.event != .end { try await writer.write(Self.sse(event)) }
            if let live {
                for await event in live {
                    if event.seq == 0 {
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    } else if event.seq > after && event.event != .end {
                        try await writer.write(Self.sse(event))
                    }
                }
            }
            // `end` once the run is over; `status` when a reader asked not to follow a run that still goes on.
            let status = run.liveStatus
            let final = String(decoding: try JSONEncoder.api.encode(status), as: UTF8.self)
            try await writer.write(ByteBuffer(string: "event: \(status.state.isFinal ? "end" : "status")\ndata: \(final)\n\n"))
            try await writer.finish(nil)
        })
    }

    // MARK: Helpers

    static func sse(_ event: RunStreamEvent) -> ByteBuffer {
        let data = (try? JSONEncoder.api.encode(event)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return ByteBuffer(string: "id: \(event.seq)\nevent: \(event.event.rawValue)\ndata: \(data)\n\n")
    }

    /// The id in the path, percent-decoded; one that cannot be an id is simply not found.
    static func id(_ context: AgentRequestContext) throws -> String {
        let raw = context.parameters.get("id") ?? ""
        let id = raw.removingPercentEncoding ?? raw
        guard (1...64).contains(id.count), id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw AgentError.notFound("no run or schedule '\(id.prefix(64))' on this agent")
        }
        return id
    }

    static func body(_ request: inout Request, limit: Int) async throws -> Data {
        do {
            let buffer = try await request.collectBody(upTo: limit)
            return Data(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            throw AgentError(.contentTooLarge, "too_large", "the body is larger than \(limit) bytes")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw AgentError(.contentTooLarge, "too_large", "the body is larger than \(limit) bytes")
        }
    }

    /// The file name the controller read the scenario from (header `X-Faultline-Source`), for error positions.
    static func source(_ request: Request) -> String {
        let name = request.headers[HTTPField.Name("X-Faultline-Source")!] ?? "scenario.yaml"
        return String(name.prefix(256).filter { !$0.isNewline })
    }

    static func span(_ request: Request, _ name: String) throws -> TimeSpan? {
        guard let text = request.uri.queryParameters[Substring(name)].map(String.init) else { return nil }
        do { return try TimeSpan(parsing: text) } catch {
            throw AgentError.badRequest("'\(name)' value '\(text)': \(error.message)")
        }
    }

    static func flag(_ text: String?, name: String, default: Bool = false) throws -> Bool {
        switch text {
        case nil: `default`
        case "false", "0": false
        case "", "true", "1": true
        case let other?: throw AgentError.badRequest("'\(name)' value '\(other)' is not true or false")
        }
    }

    static func parseTime(_ text: String) -> Date? { APIDate.parse(text) }

    /// A whole number query parameter within `range`; a bad request names it.
    static func number(_ text: String?, name: String, range: ClosedRange<Int>, default: Int) throws -> Int {
        guard let text else { return `default` }
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(text), range.contains(value) else {
            throw AgentError.badRequest("'\(name)' value '\(text.prefix(32))' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing key '\(key.stringValue)'"
        case DecodingError.typeMismatch(_, let context), DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty ? "not a JSON object" : "bad value at '\(context.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: "not JSON"
        }
    }

    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        data(try JSONEncoder.api.encode(value), type: "application/json", status: status)
    }

    static func data(_ data: Data, type: String, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = type
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String, type: String = "text/plain; charset=utf-8") -> Response {
        data(Data(text.utf8), type: type)
    }
}
