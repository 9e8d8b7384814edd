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

    /// Every command run so far, in order.
    public var commands: [[String]] { recorded.withLock { $0 } }

    public func run(_ argv: [String], timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        recorded.withLock { $0.append(argv) }
        return answer(argv)
    }
}
