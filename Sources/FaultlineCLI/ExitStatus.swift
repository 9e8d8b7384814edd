import ArgumentParser
import FaultlineCore

/// The exit codes of SPEC §2.
public enum ExitStatus {
    public static let success = ExitCode(0)
    public static let deviated = ExitCode(1)
    public static let invalid = ExitCode(2)
    public static let preflightFailed = ExitCode(3)
    public static let revertFailed = ExitCode(4)
    public static let interrupted = ExitCode(130)
    /// Declined at the confirmation prompt: the user stopped it before anything was applied.
    public static let declined = ExitCode(130)
}

extension Faultline {
    /// Parses and runs a command line, mapping usage errors to exit code 2 as SPEC §2 says.
    public static func runMain(_ arguments: [String]? = nil) async -> Never {
        do {
            var command = try parseAsRoot(movingGlobalOptions(arguments ?? Array(CommandLine.arguments.dropFirst())))
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit()
        } catch {
            // A mistyped command: say which one was meant, as git does, rather than "unexpected arguments".
            if let unknown = unknownCommand(arguments ?? Array(CommandLine.arguments.dropFirst())) {
                StandardError.write("faultline: '\(unknown.word)' is not a faultline command"
                    + (unknown.suggestion.map { " (did you mean '\($0)'?)" } ?? "") + "\nRun 'faultline --help' for the commands.\n")
                exit(withError: ExitStatus.invalid)
            }
            if exitCode(for: error) == .validationFailure {
                StandardError.write(fullMessage(for: error) + "\n" + "Run 'faultline --help' for usage.\n")
                exit(withError: ExitStatus.invalid)
            }
            exit(withError: error)
        }
    }
}

extension Faultline {
    /// The first word of `arguments` that is not a global option or its value, when it names no command: with the
    /// nearest command name, if one is near.
    static func unknownCommand(_ arguments: [String]) -> (word: String, suggestion: String?)? {
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let word = arguments[index]
            if globalOptions.contains(word) { index += 2; continue }
            if word.hasPrefix("-") { return nil }
            let names = configuration.subcommands.map { $0.configuration.commandName ?? "" } + ["help"]
            if names.contains(word) { return nil }
            return (word, Spelling.suggest(word, among: names.filter { !["guard", "hog", "delayer", "probe", "help"].contains($0) }))
        }
        return nil
    }

    /// The options the README calls global, each with a value.
    static let globalOptions: Set<String> = ["--state-dir", "--log-format", "--log-level", "--agent", "--agents", "--token-file",
                                             "--ca-file", "--client-cert", "--client-key"]

    /// `faultline --agent URL --state-dir D list …` as `faultline list --agent URL --state-dir D …`: global options
    /// given before the command go after its name, where the command reads them (a command that has no use for one
    /// says so as for any unknown option). Anything else before the command is left as it is.
    static func movingGlobalOptions(_ arguments: [String]) -> [String] {
        var moved: [String] = []
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let word = arguments[index]
            let name = String(word.split(separator: "=", maxSplits: 1).first ?? "")
            guard globalOptions.contains(name) else { break }
            if word.contains("=") {
                moved.append(word)
                index += 1
            } else {
                guard index + 1 < arguments.endIndex else { return arguments }
                moved += [word, arguments[index + 1]]
                index += 2
            }
        }
        guard !moved.isEmpty, index < arguments.endIndex, !arguments[index].hasPrefix("-") else { return arguments }
        return [arguments[index]] + moved + arguments[(index + 1)...]
    }
}
