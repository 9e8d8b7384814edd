import CFaultlineShims
import FaultlineCore

#if canImport(Glibc)
import Glibc
#endif

/// Waits for one process to end, through a pidfd: wakes the moment it dies, even by SIGKILL.
public final class ProcessWatch: Sendable {
    let fd: Int32

    /// Nil when the process is already gone (or its pid belongs to another process now).
    public init?(_ process: ProcessIdentity, table: ProcessTable = ProcessTable()) {
        let fd = faultline_pidfd_open(process.pid)
        guard fd >= 0 else { return nil }
        guard let now = table.read(process.pid), now.startTime == process.startTime, now.state != "Z" else {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// True when the process has ended within `timeout` milliseconds.
    public func waitForExit(timeoutMilliseconds: Int32) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, timeoutMilliseconds)
        return ready > 0 && poller.revents & Int16(POLLIN) != 0
    }
}
