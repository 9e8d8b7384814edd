import FaultlineCore
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// What a finished command gave back.
public struct CommandResult: Sendable, Hashable {
    public var argv: [String]
    public var exitCode: Int32
    public var standardOutput: String
    public var standardError: String

    public init(argv: [String], exitCode: Int32, standardOutput: String = "", standardError: String = "") {
        self.argv = argv
        self.exitCode = exitCode
        self.standardOutput = standardOutput
        self.standardError = standardError
    }

    public var succeeded: Bool { exitCode == 0 }
}

/// Runs commands as argv arrays, never through a shell, always with a timeout and an output limit.
public protocol CommandRunner: Sendable {
    func run(_ argv: [String], timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult
    /// The same, with `input` written to the command's standard input (an iptables-restore batch).
    func run(_ argv: [String], input: String, timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult
}

extension CommandRunner {
    /// Runs with a 10 s timeout and a 1 MiB output limit.
    public func run(_ argv: [String]) async throws(FaultlineError) -> CommandResult {
        try await run(argv, timeout: .seconds(10), outputLimit: 1 << 20)
    }

    /// Runs with `input` on standard input, a 10 s timeout and a 1 MiB output limit.
    public func run(_ argv: [String], input: String) async throws(FaultlineError) -> CommandResult {
        try await run(argv, input: input, timeout: .seconds(10), outputLimit: 1 << 20)
    }
}

/// The production runner, over swift-subprocess.
public struct SubprocessRunner: CommandRunner {
    public init() {}

    public func run(_ argv: [String], timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        try await run(argv, input: nil, timeout: timeout, outputLimit: outputLimit)
    }

    public func run(_ argv: [String], input: String, timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        try await run(argv, input: Optional(input), timeout: timeout, outputLimit: outputLimit)
    }

    func run(_ argv: [String], input: String?, timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        guard let program = argv.first, !program.isEmpty else {
            throw FaultlineError(.internalError, "empty command line")
        }
        let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
        do {
            return try await withThrowingTaskGroup(of: CommandResult?.self) { group in
                group.addTask {
                    let result = if let input {
                        try await Subprocess.run(
                            executable, arguments: Arguments(Array(argv.dropFirst())), input: .string(input),
                            output: .string(limit: outputLimit), error: .string(limit: outputLimit)
                        )
                    } else {
                        try await Subprocess.run(
                            executable, arguments: Arguments(Array(argv.dropFirst())),
                            output: .string(limit: outputLimit), error: .string(limit: outputLimit)
                        )
                    }
                    let code: Int32 = switch result.terminationStatus {
                    case .exited(let code): code
                    case .signaled(let signal): 128 + signal
                    }
                    return CommandResult(argv: argv, exitCode: code, standardOutput: result.standardOutput,
                                         standardError: result.standardError)
                }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let result = first else {
                    throw FaultlineError(.commandFailed, "'\(ShellQuote.join(argv))' did not finish within \(timeout)")
                }
                return result
            }
        } catch let error as FaultlineError {
            throw error
        } catch {
            throw FaultlineError(.commandFailed, "cannot run '\(ShellQuote.join(argv))'", cause: "\(error)")
        }
    }
}
