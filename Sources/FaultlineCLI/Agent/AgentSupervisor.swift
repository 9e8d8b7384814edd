import FaultlineCore
import FaultlineSystem
import Foundation
import Synchronization

/// The stop signal the supervisor has been sent and not yet passed on (0: none).
private let pendingStop = Atomic<Int32>(0)

/// What `faultline agent` does as process 1 of a PID namespace (a container's entrypoint): it runs the real agent
/// as its child and stays alive until every process it adopted has ended.
///
/// When process 1 of a namespace ends, the kernel kills every other process in it — the guards too, which would
/// leave the faults of a crashed agent in place until the container restarts. Here the agent is process 2: if it
/// dies, its guards (adopted by process 1) revert from the journal, and only then does the container exit.
/// Stop signals go to the agent, which reverts every run before it exits. Orphans are reaped, as an init must.
enum AgentSupervisor {
    /// The environment variable that marks the supervised child, so it does not supervise itself.
    static let childMarker = "FAULTLINE_AGENT_SUPERVISED"

    /// Whether this process should supervise rather than serve.
    static var shouldSupervise: Bool {
        getpid() == 1 && ProcessInfo.processInfo.environment[childMarker] == nil
    }

    /// Runs the agent (`arguments`, this process's own command line) as a child; returns the exit code to end with.
    static func run(arguments: [String]) -> Int32 {
        for stop in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] {
            signal(stop) { number in pendingStop.store(number, ordering: .relaxed) }
        }
        setenv(childMarker, "1", 1)
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? arguments[0]
        let agent: ProcessIdentity
        do {
            agent = try ChildProcess.spawn([executable] + arguments.dropFirst(), table: ProcessTable(), inheritOutput: true)
        } catch {
            StandardError.write("faultline: cannot start the agent under process 1: \(error)\n")
            return 3
        }
        var agentExit: Int32?
        while true {
            let stop = pendingStop.exchange(0, ordering: .relaxed)
            if stop != 0, agentExit == nil { kill(agent.pid, stop) }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid == agent.pid {
                let signal = status & 0x7f
                agentExit = signal == 0 ? (status >> 8) & 0xff : 128 + signal
                if signal != 0 {
                    StandardError.write("faultline: the agent was killed by signal \(signal); its guards revert what its runs left, then this container exits\n")
                }
            } else if pid > 0 {
                continue
            } else if pid < 0, errno == ECHILD {
                return agentExit ?? 3
            } else {
                usleep(50_000)
            }
        }
    }
}
