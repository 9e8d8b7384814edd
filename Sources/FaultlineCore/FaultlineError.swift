/// The one error type of the project: a stable code, a message for people, and the cause.
public struct FaultlineError: Error, Sendable, CustomStringConvertible {
    /// Machine-readable error codes; the CLI maps them to exit codes.
    public enum Code: String, Sendable, Codable {
        case invalidScenario = "invalid-scenario"
        case usage
        case io
        case commandFailed = "command-failed"
        case preflight
        case internalError = "internal"
    }

    public var code: Code
    public var message: String
    public var cause: String?

    public init(_ code: Code, _ message: String, cause: String? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message): \(cause)" }
        return message
    }
}

/// Why a user-supplied string is not a valid typed value; the loader adds file, line and key.
public struct ValueError: Error, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
}
