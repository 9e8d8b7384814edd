import CFaultlineShims
import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Sends signals only to the very process that was matched: a pidfd pins the process, and its start
/// time is checked through the pidfd's pid before the signal goes, so a reused pid is never hit.
public struct ProcessSignaller: Sendable {
    /// What happened to one signal.
    public enum Outcome: Sendable, Equatable {
        case sent
        /// The process is gone, or its pid now belongs to another process.
        case gone
    }

    let table: ProcessTable

    public init(table: ProcessTable = ProcessTable()) { self.table = table }

    public func send(_ signal: Signal, to process: ProcessIdentity) throws(FaultlineError) -> Outcome {
        let fd = faultline_pidfd_open(process.pid)
        if fd < 0 {
            if errno == ESRCH { return .gone }
            if errno != ENOSYS { throw FaultlineError(.commandFailed, "cannot open a pidfd for \(process): \(String(cString: strerror(errno)))") }
            // Kernel without pidfds: check, then kill(2); the window is a few microseconds.
            guard table.read(process.pid)?.startTime == process.startTime else { return .gone }
            return try result(of: kill(process.pid, signal.number), process, signal)
        }
        defer { close(fd) }
        // The pidfd now refers to whichever process has this pid; it is ours only if the start time matches.
        guard let current = table.read(process.pid), current.startTime == process.startTime else { return .gone }
        return try result(of: faultline_pidfd_send_signal(fd, signal.number), process, signal)
    }

    private func result(of status: Int32, _ process: ProcessIdentity, _ signal: Signal) throws(FaultlineError) -> Outcome {
        if status == 0 { return .sent }
        if errno == ESRCH { return .gone }
        if errno == EPERM {
            throw FaultlineError(.preflight, "not allowed to send \(signal) to \(process): it belongs to another user; run as root or with CAP_KILL")
        }
        throw FaultlineError(.commandFailed, "cannot send \(signal) to \(process): \(String(cString: strerror(errno)))")
    }
}
