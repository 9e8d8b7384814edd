import FaultlineCore
import Foundation

/// Reads and loads a scenario file, turning every failure into diagnostics with the file's name.
enum ScenarioFile {
    /// The file's text, if it can be read.
    static func contents(_ path: String) -> String? {
        (try? Data(contentsOf: URL(fileURLWithPath: path))).flatMap { String(data: $0, encoding: .utf8) }
    }

    /// Loads the file, or prints every error and exits 2.
    static func loadOrExit(_ path: String) throws -> Scenario {
        do {
            return try load(path)
        } catch {
            StandardError.write(error.description + "\n")
            throw ExitStatus.invalid
        }
    }

    static func load(_ path: String) throws(ScenarioErrors) -> Scenario {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw ScenarioErrors([Diagnostic(file: path, line: 1, column: 1, path: "", message: "file is not UTF-8 text")])
            }
            text = decoded
        } catch let error as ScenarioErrors {
            throw error
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? error.localizedDescription
            throw ScenarioErrors([Diagnostic(file: path, line: 1, column: 1, path: "", message: "cannot read file: \(reason)")])
        }
        return try ScenarioLoader.load(yaml: text, file: path)
    }
}
