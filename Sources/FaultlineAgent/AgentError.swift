import FaultlineCore
import Foundation
import Hummingbird

/// An API error: a status and `{"error": {"code", "message", "details"}}` (SPEC §3).
public struct AgentError: HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    /// Scenario diagnostics (file positions) or failed preflight checks.
    public var details: [Detail]
    /// The run that holds what a conflicting run wanted (409).
    public var heldBy: String?
    /// The methods a path has (405, the Allow header).
    public var allow: [String] = []

    /// One line of detail: a scenario error at a position, or a preflight check.
    public struct Detail: Codable, Sendable, Hashable {
        public var path: String?
        public var line: Int?
        public var column: Int?
        public var message: String
    }

    public init(_ status: HTTPResponse.Status, _ code: String, _ message: String, details: [Detail] = [], heldBy: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.heldBy = heldBy
    }

    static func invalid(_ errors: ScenarioErrors) -> AgentError {
        AgentError(.badRequest, "invalid_scenario", "the scenario has \(errors.diagnostics.count) error(s); nothing was applied",
                   details: errors.diagnostics.map { Detail(path: $0.path, line: $0.line, column: $0.column, message: $0.description) })
    }

    static func badRequest(_ message: String) -> AgentError { AgentError(.badRequest, "bad_request", message) }
    static func notFound(_ what: String) -> AgentError { AgentError(.notFound, "not_found", what) }

    /// The error body on the wire; the controller reads it with the same type.
    public struct Body: Codable, Sendable {
        public struct Inner: Codable, Sendable {
            public var code: String
            public var message: String
            public var details: [Detail]?
            public var heldBy: String?
        }
        public var error: Inner
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = Body(error: .init(code: code, message: message, details: details.isEmpty ? nil : details, heldBy: heldBy))
        let data = (try? JSONEncoder.api.encode(body)) ?? Data("{\"error\":{\"code\":\"internal\",\"message\":\"cannot encode\"}}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"faultline\"" }
        if !allow.isEmpty { headers[.allow] = allow.joined(separator: ", ") }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension JSONEncoder {
    /// The encoder of every API body: RFC 3339 dates with milliseconds, sorted keys.
    public static var api: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(APIDate.format(date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

extension JSONDecoder {
    /// The decoder for API bodies: RFC 3339 dates with or without fractions.
    public static var api: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = APIDate.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an RFC 3339 time")
            }
            return date
        }
        return decoder
    }
}

/// RFC 3339 times as the API writes and reads them.
public enum APIDate {
    /// `2026-11-27T21:38:44.250Z`, written by hand: a formatter per date costs more than the rest of a status answer.
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let fraction = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(fraction), 3))Z"
    }

    public static func parse(_ text: String) -> Date? {
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: text) ?? ISO8601DateFormatter().date(from: text)
    }
}
