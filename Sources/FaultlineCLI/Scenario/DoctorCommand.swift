import ArgumentParser
import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import Foundation

/// `faultline doctor [FILE]`: what each fault needs — capabilities, tools, kernel features — and whether this host has it.
struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check the capabilities, tools and kernel features that faults need, and name the fix for what is missing.",
        discussion: """
            Kernel features are tried for real in a throwaway network namespace (that needs root); \
            nothing else on the host is changed. With FILE, checks that scenario's faults and exits 3 \
            when anything they need is missing; without, lists every fault type and exits 0.

            Examples:
              faultline doctor
              faultline doctor scenarios/checkout-db-latency.yaml -o json
            """
    )

    @Argument(help: "A scenario file to check (default: every fault type).", completion: .file(extensions: ["yaml", "yml", "json"]))
    var file: String?

    /// `-o json` (or the older `--format json`): the checks as JSON.
    @OptionGroup var output: OutputOrFormatOption

    @OptionGroup var runtime: RuntimeOptions

    /// --state-dir: whose journal reserve to report.
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        // Doctor tries every kernel feature now, whatever this process saw before.
        let preflight = Preflight(featureCache: nil)
        let report: PreflightReport
        var containerProblems: [String: String] = [:]
        if let file {
            var scenario = try ScenarioFile.loadOrExit(file)
            if scenario.namesContainers {
                let resolution = await ContainerResolver(socket: runtime.runtimeSocket).resolve(scenario)
            (scenario, containerProblems) = (resolution.scenario, resolution.problems)
            }
            report = await preflight.check(scenario)
        } else {
            report = await preflight.checkAllTypes()
        }
        switch output.format {
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        case .text:
            print(Self.table(report), terminator: "")
            print(Journal.reserveStatus(directory: global.stateDirectory))
            if FileManager.default.fileExists(atPath: global.stateDirectory) {
                print("the state directory \(global.stateDirectory) holds \(StateUsage.measure(global.stateDirectory).description)")
            }
        }
        for (container, problem) in containerProblems.sorted(by: { $0.key < $1.key }) {
            StandardError.write("faultline: \(container) was not found: \(problem)\n")
        }
        if file != nil, !report.passed || !containerProblems.isEmpty { throw ExitStatus.preflightFailed }
    }

    static func table(_ report: PreflightReport) -> String {
        var out = "Effective capabilities: \(report.effectiveCapabilities.isEmpty ? "none" : report.effectiveCapabilities.joined(separator: ", "))\n\n"
        let rows = report.checks.map { check in
            [check.fault ?? check.type.rawValue, "\(check.kind.rawValue) \(check.name)", check.status.rawValue,
             [check.detail, check.fix].compactMap { $0 }.joined(separator: " — ")]
        }
        let header = ["FAULT", "NEEDS", "STATUS", "DETAIL / FIX"]
        let widths = (0..<3).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        for row in [header] + rows {
            out += (0..<3).map { row[$0].padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
            out += "  " + row[3] + "\n"
        }
        let missing = report.checks.filter { $0.status == .missing }.count
        out += missing == 0 ? "\nnothing missing\n" : "\n\(missing) missing\n"
        return out
    }
}
