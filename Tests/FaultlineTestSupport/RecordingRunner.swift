import FaultlineCore
import FaultlineSystem
import Synchronization

/// A runner for unit tests: records every argv and answers from a closure.
public final class RecordingRunner: CommandRunner {
    private let recorded = Mutex<[[String]]>([])
    private let answer: @Sendable ([String]) -> CommandResult

    public init(answer: @escaping @Sendable ([String]) -> CommandResult = { CommandResult(argv: $0, exitCode: 0) }) {
        self.answer = answer
    }

    private let inputs = Mutex<[String: String]>([:])

    /// Every command run so far, in order.
    public var commands: [[String]] { recorded.withLock { $0 } }

    /// What each command given standard input got (by its argv joined with spaces).
    public var standardInputs: [String: String] { inputs.withLock { $0 } }

    public func run(_ argv: [String], timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        recorded.withLock { $0.append(argv) }
        return answer(argv)
    }

    public func run(_ argv: [String], input: String, timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        inputs.withLock { $0[argv.joined(separator: " ")] = input }
        return try await run(argv, timeout: timeout, outputLimit: outputLimit)
    }
}
