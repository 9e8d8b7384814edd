import CFaultlineShims
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Moves the calling thread — only it: setns(2) is per thread — into another network namespace.
public enum ThreadNamespace {
    /// Enters the network namespace at `path` (a /run/netns file or /proc/PID/ns/net); nil when it did, else why not.
    public static func enter(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot open \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        guard faultline_setns_net(fd) == 0 else { return "cannot enter \(path): \(String(cString: strerror(errno)))" }
        return nil
    }
}
