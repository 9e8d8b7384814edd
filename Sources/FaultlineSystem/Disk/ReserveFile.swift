import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Room kept on a filesystem for a bad moment: a preallocated file, given up when the disk is full so that what
/// must be written then (the journal's record of a revert) still has room.
public enum ReserveFile {
    /// Keeps a file of `size` bytes at `path` (allocated for real, synced), when there is none yet; why not, when it
    /// cannot (too little room), naming it `name`.
    public static func keep(at path: String, size: Int, name: String = "reserve") -> String? {
        guard !FileManager.default.fileExists(atPath: path) else { return nil }
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return "cannot create the \(name) \(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        let code = posix_fallocate(fd, 0, off_t(size))
        guard code == 0 else {
            unlink(path)
            return "no \(size >> 20) MiB \(name) in \((path as NSString).deletingLastPathComponent) (\(String(cString: strerror(code))))"
        }
        fsync(fd)
        return nil
    }

    /// Gives the room back to the filesystem.
    public static func release(at path: String) {
        unlink(path)
    }
}

/// An exclusive advisory lock on a file (flock), held until `release()` (once) or the end of the process.
public final class FileLock: Sendable {
    private let fd: Atomic<Int32>

    init(fd: Int32) { self.fd = Atomic(fd) }

    /// Waits for the lock on `path` (made if needed, mode 0600); a lock that cannot be had (no such directory) is
    /// no lock: it does not stop the caller.
    public static func exclusive(_ path: String) -> FileLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { flock(fd, LOCK_EX) }
        return FileLock(fd: fd)
    }

    public func release() {
        let fd = fd.exchange(-1, ordering: .relaxed)
        if fd >= 0 { close(fd) }
    }
}
