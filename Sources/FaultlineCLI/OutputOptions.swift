import ArgumentParser
import FaultlineAgent
import Foundation

/// What a command prints its results as: text for people, or JSON for scripts.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable, Sendable { case text, json }

/// `-o, --output text|json`: the one spelling every command that prints data takes.
struct OutputOptions: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong("output")],
            help: ArgumentHelp("Print text (the default) or json, for scripts.", valueName: "text|json"))
    var output: OutputFormat?

    var format: OutputFormat { output ?? .text }

    /// The format of -o, else of an older spelling (`alias`, named `name`); a usage error when both are given and differ.
    func format(alias: OutputFormat?, spelled name: String) throws -> OutputFormat {
        if let output, let alias, output != alias {
            throw ValidationError("-o \(output.rawValue) and \(name) ask for different formats: use -o alone")
        }
        return output ?? alias ?? .text
    }
}

/// `-o text|json`, or `--json`: the older spelling of `list`, `audit` and `events`, kept for scripts (hidden from help).
struct OutputOrJSONFlag: ParsableArguments {
    @OptionGroup var options: OutputOptions

    @Flag(name: .customLong("json"), help: ArgumentHelp("The same as -o json.", visibility: .hidden))
    var json = false

    func validate() throws { _ = try options.format(alias: json ? .json : nil, spelled: "--json") }

    var format: OutputFormat { (try? options.format(alias: json ? .json : nil, spelled: "--json")) ?? .text }
}

/// `-o text|json`, or `--format text|json`: the older spelling of `plan` and `doctor`, kept for scripts (hidden from help).
struct OutputOrFormatOption: ParsableArguments {
    @OptionGroup var options: OutputOptions

    @Option(name: .customLong("format"), help: ArgumentHelp("The same as -o.", visibility: .hidden))
    var older: OutputFormat?

    func validate() throws { _ = try options.format(alias: older, spelled: "--format") }

    var format: OutputFormat { (try? options.format(alias: older, spelled: "--format")) ?? .text }
}

/// `value` as one line of JSON, encoded as the agent's API encodes (sorted keys, RFC 3339 times).
func jsonLine(_ value: some Encodable) throws -> String {
    String(decoding: try JSONEncoder.api.encode(value), as: UTF8.self) + "\n"
}

/// Prints `value` as one line of JSON on stdout.
func printJSON(_ value: some Encodable) throws {
    print(try jsonLine(value), terminator: "")
}
