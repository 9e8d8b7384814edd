import CFaultlineShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Ends a helper process (the stress hog) when the process that started it ends.
///
/// PR_SET_PDEATHSIG alone is not enough: it fires when the parent *thread* that forked the child
/// exits, and Swift's concurrency pool retires idle threads, so a hog could be killed early.
/// A pidfd of the parent process becomes readable only when the whole process has ended.
public enum ParentWatch {
    /// Starts a thread that exits this process once its parent has ended; exits at once if it already has.
    public static func exitWhenParentEnds() {
        let parent = getppid()
        if parent == 1 { exit(0) }
        let fd = faultline_pidfd_open(parent)
        guard fd >= 0 else {
            // No pidfds (kernel < 5.3): the parent-death signal is the best there is.
            _ = faultline_set_parent_death_signal(SIGKILL)
            if getppid() != parent { exit(0) }
            return
        }
        let thread = Thread {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            while poll(&poller, 1, -1) < 0, errno == EINTR {}
            exit(0)
        }
        thread.start()
    }
}
