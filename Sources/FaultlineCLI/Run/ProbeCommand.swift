import ArgumentParser
import FaultlineCore
import FaultlineProbes
import Foundation

/// `faultline probe JSON`: checks one probe from this namespace and prints the outcome as JSON
/// (`run` starts it inside a scenario's target namespace).
struct ProbeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "probe", abstract: "Check one probe here and print the outcome.", shouldDisplay: false)

    @Argument(help: "The probe, as JSON.") var probe: String

    func run() async throws {
        let decoded: Probe
        do { decoded = try JSONDecoder().decode(Probe.self, from: Data(probe.utf8)) } catch {
            throw ValidationError("invalid probe JSON: \(error)")
        }
        let outcome = await ProbeExecutor().checkHere(decoded)
        print(String(decoding: try JSONEncoder().encode(outcome), as: UTF8.self))
    }
}
