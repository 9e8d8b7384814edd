import ArgumentParser
import FaultlineCore

/// `faultline validate FILE...`: checks scenario files and prints every problem with its position.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check scenario files; print 'ok FILE' or every error with its line and column.",
        discussion: """
            Exit code 0 when every file is valid, 2 when any is not. Nothing is applied.

            With -o json: {"ok": true|false, "files": [{"file", "ok"}], "errors": [{"file", "line", "column", \
            "path", "message"}]}, on stdout only.

            Example:
              faultline validate scenarios/*.yaml
            """
    )

    @Argument(help: "Scenario files (YAML or JSON).", completion: .file(extensions: ["yaml", "yml", "json"]))
    var files: [String]

    /// `-o json`: one result object, for scripts and editors.
    @OptionGroup var output: OutputOptions

    /// What `-o json` prints.
    struct Summary: Encodable {
        struct File: Encodable {
            var file: String
            var ok: Bool
        }

        var ok: Bool
        var files: [File]
        /// Every error of every file, with its position; `message` without the position.
        var errors: [Diagnostic]
    }

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one scenario file") }
    }

    func run() throws {
        let json = output.format == .json
        var result = Summary(ok: true, files: [], errors: [])
        for file in files {
            do {
                _ = try ScenarioFile.load(file)
                result.files.append(.init(file: file, ok: true))
                if !json { print("ok \(file)") }
            } catch {
                result.ok = false
                result.files.append(.init(file: file, ok: false))
                result.errors += error.diagnostics
                let count = error.diagnostics.count
                if !json { StandardError.write(error.description + "\n\(file): \(count) error\(count == 1 ? "" : "s")\n") }
            }
        }
        if json { try printJSON(result) }
        if !result.ok { throw ExitStatus.invalid }
    }
}
