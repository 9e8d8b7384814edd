import ArgumentParser
import FaultlineSystem

/// The `faultline` command: chaos and game-day experiments for Linux hosts.
public struct Faultline: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "faultline",
        abstract: "Run declarative chaos experiments on Linux, watch the steady state, and always revert.",
        discussion: """
            Examples:
              faultline validate scenarios/*.yaml
              faultline plan scenarios/checkout-db-latency.yaml
            """,
        version: "0.1.0",
        subcommands: [
            ValidateCommand.self, PlanCommand.self, RunCommand.self, DoctorCommand.self, RecoverCommand.self, AgentCommand.self,
            SubmitCommand.self, StatusCommand.self, ListCommand.self, EventsCommand.self, AbortCommand.self, SchedulesCommand.self,
            UnscheduleCommand.self, HealthCommand.self, HogCommand.self, DelayerCommand.self, GuardCommand.self, ProbeCommand.self,
        ]
    )

    public init() {}
}

extension Faultline {
    /// Call first, before any other thread exists: hands the capabilities a non-root binary got from its file
    /// capabilities to the commands it runs (`ProcessCapabilities.raiseForChildren`), and makes a guard ignore stop
    /// signals from its first instruction on (see `GuardCommand`).
    public static func prepareProcess(arguments: [String] = CommandLine.arguments) {
        ProcessCapabilities.raiseForChildren()
        if arguments.dropFirst().first == GuardCommand.configuration.commandName { GuardCommand.ignoreStopSignals() }
    }
}
