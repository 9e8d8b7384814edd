import ArgumentParser
import FaultlineSystem

#if canImport(Glibc)
import Glibc
#endif

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
            InitCommand.self, ValidateCommand.self, PlanCommand.self, ExplainCommand.self, SchemaCommand.self, RunCommand.self, DoctorCommand.self, RecoverCommand.self, AgentCommand.self,
            SubmitCommand.self, StatusCommand.self, ListCommand.self, EventsCommand.self, AbortCommand.self, SchedulesCommand.self,
            UnscheduleCommand.self, ReportCommand.self, AuditCommand.self, HealthCommand.self, HogCommand.self, DelayerCommand.self, GuardCommand.self, ProbeCommand.self,
        ]
    )

    public init() {}
}

extension Faultline {
    /// Call first, before any other thread exists: hands the capabilities a non-root binary got from its file
    /// capabilities to the commands it runs (`ProcessCapabilities.raiseForChildren`), survives a closed output pipe
    /// (SIGPIPE), and makes a guard ignore stop signals from its first instruction on (see `GuardCommand`).
    public static func prepareProcess(arguments: [String] = CommandLine.arguments) {
        ProcessCapabilities.raiseForChildren()
        // A reader that went away (`faultline run S | tee log`, then Ctrl-C) must not kill the runner, the guard, the
        // delayer or a hog half way: writes to it fail with EPIPE instead. A handler rather than SIG_IGN, because a
        // handler is reset at exec, so the commands Faultline starts keep the default SIGPIPE.
        signal(SIGPIPE) { _ in }
        if arguments.dropFirst().first == GuardCommand.configuration.commandName { GuardCommand.ignoreStopSignals() }
    }
}
