import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The process's limit on open files (RLIMIT_NOFILE): a long-lived agent raises its soft limit to the hard one, and
/// keeps part of it for reverts by capping its connections below it.
public enum OpenFileLimit {
    /// Descriptors kept free for reverts (each command a revert runs needs a few for its pipes), the journal and guards.
    public static let reserve = 256

    /// Raises the soft limit to the hard limit; the limits now.
    @discardableResult
    public static func raise() -> (soft: Int, hard: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (1024, 1024) }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return (clamp(limit.rlim_cur), clamp(limit.rlim_max))
    }

    /// How many client connections fit beside the reserve under a soft limit of `soft` descriptors (at least 16).
    public static func connectionCap(soft: Int) -> Int {
        max(16, soft - reserve)
    }

    static func clamp(_ value: rlim_t) -> Int { value > rlim_t(Int32.max) ? Int(Int32.max) : Int(value) }
}
