import ArgumentParser
import FaultlineEngine
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Options every command that runs or reverts faults takes (SPEC §2).
struct GlobalOptions: ParsableArguments {
    @Option(help: "Where the journal lives (default: /var/lib/faultline as root, else $XDG_STATE_HOME/faultline; env FAULTLINE_STATE_DIR).", completion: .directory)
    var stateDir: String?

    @Option(help: "Log format on stderr: text or json.")
    var logFormat: LogFormat = .text

    @Option(help: "Least level logged: debug, info, warning, error.")
    var logLevel: LogLevel = .info

    enum LogFormat: String, ExpressibleByArgument, CaseIterable { case text, json }
    enum LogLevel: String, ExpressibleByArgument, CaseIterable { case debug, info, warning, error }

    var stateDirectory: String { stateDir ?? Self.defaultStateDirectory }

    /// The state directory when `--state-dir` is not given: env FAULTLINE_STATE_DIR, /var/lib/faultline as root,
    /// else $XDG_STATE_HOME/faultline.
    static var defaultStateDirectory: String {
        let environment = ProcessInfo.processInfo.environment
        if let fromEnvironment = environment["FAULTLINE_STATE_DIR"], !fromEnvironment.isEmpty { return fromEnvironment }
        if geteuid() == 0 { return "/var/lib/faultline" }
        let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? (NSHomeDirectory() + "/.local/state")
        return base + "/faultline"
    }

    func eventLog(run: String, scenario: String, live: LiveView? = nil) -> EventLog {
        EventLog(format: logFormat == .json ? .json : .text, run: run, scenario: scenario,
                 minimum: RunEvent.Level(rawValue: logLevel.rawValue) ?? .info) { line in
            if let live { live.print(line) } else { StandardError.write(line) }
        }
    }

    /// The arguments that pass these options on to a child faultline process.
    var forwarded: [String] {
        ["--state-dir", stateDirectory, "--log-format", logFormat.rawValue, "--log-level", logLevel.rawValue]
    }
}
