import ArgumentParser

/// The exit codes of SPEC §2.
public enum ExitStatus {
    public static let success = ExitCode(0)
    public static let deviated = ExitCode(1)
    public static let invalid = ExitCode(2)
    public static let preflightFailed = ExitCode(3)
    public static let revertFailed = ExitCode(4)
    public static let interrupted = ExitCode(130)
}

extension Faultline {
    /// Parses and runs a command line, mapping usage errors to exit code 2 as SPEC §2 says.
    public static func runMain(_ arguments: [String]? = nil) async -> Never {
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit()
        } catch {
            if exitCode(for: error) == .validationFailure {
                StandardError.write(fullMessage(for: error) + "\n" + "Run 'faultline --help' for usage.\n")
                exit(withError: ExitStatus.invalid)
            }
            exit(withError: error)
        }
    }
}
