import ArgumentParser
import FaultlineCore

/// `faultline explain KEY.PATH`: the format's documentation for a key, like `kubectl explain`.
struct ExplainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain",
        abstract: "Show the scenario format's documentation for a key (type, default, example, meaning, the keys under it).",
        discussion: """
            KEY is a key path as the format writes it, with or without [] for lists; a fault type's name shows that \
            type's keys; no KEY lists the top-level keys. The text is docs/scenario-format.md's, for the keys the \
            loader allows. Exit code 2 for a key the format does not have (with the nearest one).

            Examples:
              faultline explain spec.faults[].from
              faultline explain spec.steadyState.abortWhen
              faultline explain latency
            """
    )

    @Argument(help: "A key path, like spec.faults[].to or spec.steadyState.probes.http.")
    var key: String = ""

    func run() throws {
        if let text = ScenarioReference.explain(key) {
            print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
            return
        }
        StandardError.write("faultline explain: " + (ScenarioReference.unknown(key) ?? "'\(key)' is not documented") + "\n")
        throw ExitStatus.invalid
    }
}

/// `faultline schema`: the JSON Schema of the format, for editors.
struct SchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema",
        abstract: "Print the JSON Schema of the scenario format, for editors (yaml-language-server, VS Code's YAML extension).",
        discussion: """
            The schema names every key the loader allows, with its documentation and the choices of enumerations, \
            and each fault type's own keys. Save it and point your editor at it, e.g. with a first line \
            '# yaml-language-server: $schema=./faultline.schema.json' in a scenario. docs/scenario.schema.json is \
            the same schema. The loader (faultline validate) stays the judge of values.

            Example:
              faultline schema > faultline.schema.json
            """
    )

    func run() throws {
        print(ScenarioJSONSchema.document(), terminator: "")
    }
}
