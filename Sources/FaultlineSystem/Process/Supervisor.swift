import FaultlineCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The stop signal the supervisor has been sent and not yet passed on (0: none).
private let pendingStop = Atomic<Int32>(0)

/// An init's loop: runs one child and stays until every process it adopted has ended. Stop signals (SIGTERM,
/// SIGINT, SIGHUP, SIGQUIT) go to the child; orphans are reaped. Not process 1, it becomes the subreaper, so the
/// child's own children (a crashed agent's guards) are adopted here.
public enum Supervisor {
    /// How the supervised child ended.
    public struct Ending: Sendable, Hashable {
        /// Its exit code, 128 + signal when killed.
        public var exitCode: Int32
        /// The signal that killed it, if one did.
        public var signal: Int32?
    }

    /// Runs `argv` with `environment` added to this process's, with this process's standard input, output and error;
    /// `childEnded` is called as soon as it ends (its adopted processes may still run). Returns once every child has
    /// ended: how the supervised one did.
    public static func run(_ argv: [String], environment: [String: String], childEnded: (Ending) -> Void) throws(FaultlineError) -> Ending {
        for stop in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] {
            signal(stop) { number in pendingStop.store(number, ordering: .relaxed) }
        }
        Subreaper.become()
        for (name, value) in environment { setenv(name, value, 1) }
        let child = try ChildProcess.spawn(argv, table: ProcessTable(), newSession: false, output: nil, pipe: nil, inherit: true)
        var ending: Ending?
        while true {
            let stop = pendingStop.exchange(0, ordering: .relaxed)
            if stop != 0, ending == nil { kill(child.pid, stop) }
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid == child.pid {
                let signal = status & 0x7f
                let ended = Ending(exitCode: signal == 0 ? (status >> 8) & 0xff : 128 + signal, signal: signal == 0 ? nil : signal)
                ending = ended
                childEnded(ended)
            } else if pid > 0 {
                continue
            } else if pid < 0, errno == ECHILD {
                return ending ?? Ending(exitCode: 3, signal: nil)
            } else {
                usleep(50_000)
            }
        }
    }
}
