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
        wait(timeoutMilliseconds: timeoutMilliseconds, orChangeIn: nil) == .exited
    }

    public enum Wake: Sendable, Equatable { case exited, changed, timedOut }

    /// Waits until the process ends (`exited`), a file in `changes`' directory is written (`changed`), or `timeout`
    /// milliseconds pass.
    public func wait(timeoutMilliseconds: Int32, orChangeIn changes: DirectoryChanges?) -> Wake {
        var pollers = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        if let changes { pollers.append(pollfd(fd: changes.fd, events: Int16(POLLIN), revents: 0)) }
        let ready = poll(&pollers, nfds_t(pollers.count), timeoutMilliseconds)
        guard ready > 0 else { return .timedOut }
        if pollers[0].revents & Int16(POLLIN) != 0 { return .exited }
        if pollers.count > 1, pollers[1].revents != 0 {
            changes?.drain()
            return .changed
        }
        return .timedOut
    }
}

/// Writes to the files of one directory, through inotify: the guard wakes the moment its run's journal records the
/// run's end, instead of finding it at its next look (up to 200 ms later, which every run's end waited for).
public final class DirectoryChanges: Sendable {
    let fd: Int32

    /// Nil when the directory cannot be watched (no inotify, too many watches): the caller then looks on a timer.
    public init?(_ directory: String) {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return nil }
        guard inotify_add_watch(fd, directory, UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE)) >= 0 else {
            close(fd)
            return nil
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Reads the events waiting (their content does not matter: the caller looks at what it watches).
    func drain() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while read(fd, &buffer, buffer.count) > 0 {}
    }
}
