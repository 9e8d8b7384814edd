import FaultlineCore
import FaultlineSystem
import Foundation

/// What `faultline agent` does as process 1 of a PID namespace (a container's entrypoint) or with `--supervise`: it
/// runs the real agent as its child and stays alive until every process it adopted has ended.
///
/// When process 1 of a namespace ends, the kernel kills every other process in it — the guards too, which would
/// leave the faults of a crashed agent in place until the container restarts (with hostPID the runtime does the same
/// when the main process ends). Here the server is a child: if it dies, its guards (adopted by this process, a
/// subreaper) revert from the journal, and only then does the container exit.
/// Stop signals go to the agent, which reverts every run before it exits. Orphans are reaped, as an init must.
enum AgentSupervisor {
    /// The environment variable that marks the supervised child, so it does not supervise itself.
    static let childMarker = "FAULTLINE_AGENT_SUPERVISED"

    /// Whether this process should supervise rather than serve: as process 1, or when asked (`--supervise`, for a
    /// container sharing the host's PID namespace, whose runtime ends the other processes when the main one ends).
    static func shouldSupervise(asked: Bool) -> Bool {
        (asked || getpid() == 1) && ProcessInfo.processInfo.environment[childMarker] == nil
    }

    /// Runs the agent (`arguments`, this process's own command line) as a child; returns the exit code to end with.
    static func run(arguments: [String]) -> Int32 {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
        do {
            return try Supervisor.run([executable] + arguments.dropFirst(), environment: [childMarker: "1"]) { ending in
                if let signal = ending.signal {
                    StandardError.write("faultline: the agent was killed by signal \(signal); its guards revert what its runs left, then this container exits\n")
                }
            }.exitCode
        } catch {
            StandardError.write("faultline: cannot start the agent under its supervisor: \(error)\n")
            return 3
        }
    }
}
