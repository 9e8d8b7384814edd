import ArgumentParser
import FaultlineCore

/// `faultline validate FILE...`: checks scenario files and prints every problem with its position.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check scenario files; print 'ok FILE' or every error with its line and column.",
        discussion: """
            Exit code 0 when every file is valid, 2 when any is not. Nothing is applied.

            Example:
              faultline validate scenarios/*.yaml
            """
    )

    @Argument(help: "Scenario files (YAML or JSON).")
    var files: [String]

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one scenario file") }
    }

    func run() throws {
        var invalid = 0
        for file in files {
            do {
                _ = try ScenarioFile.load(file)
                print("ok \(file)")
            } catch {
                invalid += 1
                let count = error.diagnostics.count
                StandardError.write(error.description + "\n\(file): \(count) error\(count == 1 ? "" : "s")\n")
            }
        }
        if invalid > 0 { throw ExitStatus.invalid }
    }
}
