import CFaultlineShims
import FaultlineCore

#if canImport(Glibc)
import Glibc
#endif

/// Space on a filesystem as `df` reckons it: use% = used / (used + available).
public struct FilesystemUsage: Sendable, Hashable {
    public var size: UInt64
    public var used: UInt64
    /// Free to unprivileged users (root may have a reserve on top).
    public var available: UInt64

    public init(size: UInt64, used: UInt64, available: UInt64) {
        self.size = size
        self.used = used
        self.available = available
    }

    /// `df`'s Use%, as a fraction.
    public var usedFraction: Double { used + available == 0 ? 0 : Double(used) / Double(used + available) }
}

/// statvfs, preallocation and removal of fill files.
public enum Filesystem {
    /// `path` as a process whose root is `root` sees it (a container's, `/proc/PID/root`): each symbolic link is
    /// followed inside that root (an absolute link starts again at it, `..` stops at it), as openat2's
    /// RESOLVE_IN_ROOT does, so a link in the container never leads to this host's own files. Returns the path
    /// inside the root (starting with `/`); what follows a missing component is kept as written.
    public static func resolve(_ path: String, inRoot root: String) throws(FaultlineError) -> String {
        var done: [String] = []
        var pending = path.split(separator: "/").map(String.init).reversed() as [String]
        var links = 0
        while let part = pending.popLast() {
            if part == "." || part.isEmpty { continue }
            if part == ".." {
                _ = done.popLast()
                continue
            }
            let candidate = root + "/" + (done + [part]).joined(separator: "/")
            var info = stat()
            guard lstat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFLNK else {
                done.append(part)
                continue
            }
            links += 1
            guard links <= 40 else { throw FaultlineError(.usage, "'\(path)' has too many symbolic links inside \(root)") }
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(candidate, &buffer, buffer.count - 1)
            guard count >= 0 else { throw FaultlineError(.io, "cannot read the link '\(candidate)': \(String(cString: strerror(errno)))") }
            let target = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if target.hasPrefix("/") { done = [] }
            pending += target.split(separator: "/").map(String.init).reversed()
        }
        return "/" + done.joined(separator: "/")
    }

    public static func usage(of path: String) throws(FaultlineError) -> FilesystemUsage {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else {
            throw FaultlineError(.io, "cannot read the filesystem of '\(path)' (statvfs): \(String(cString: strerror(errno)))")
        }
        let unit = UInt64(stats.f_frsize)
        let size = UInt64(stats.f_blocks) * unit
        return FilesystemUsage(size: size, used: size - UInt64(stats.f_bfree) * unit, available: UInt64(stats.f_bavail) * unit)
    }

    /// Creates `path` (which must not exist) holding `bytes`: fallocate(2), or zeros written where that is unsupported;
    /// then fsync. With `shrinkWhenFull`, a request the filesystem cannot meet (its own metadata needs room too) is
    /// shrunk step by step until it fits. Returns the bytes allocated.
    @discardableResult
    public static func createFill(at path: String, bytes: UInt64, shrinkWhenFull: Bool = false) throws(FaultlineError) -> UInt64 {
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw FaultlineError(.io, "cannot create '\(path)': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var size = bytes
        var attempts = 0
        while size > 0, faultline_fallocate(fd, 0, Int64(size)) != 0 {
            let code = errno
            if code == ENOSPC, shrinkWhenFull, attempts < 64 {
                attempts += 1
                _ = ftruncate(fd, 0)
                size -= min(size, max(size / 256, 64 << 10))
                continue
            }
            guard code == EOPNOTSUPP || code == ENOSYS else {
                throw FaultlineError(.io, "cannot allocate \(ByteCount(bytes: size)) in '\(path)': \(String(cString: strerror(code)))")
            }
            try writeZeros(fd: fd, bytes: size, path: path)
            break
        }
        guard fsync(fd) == 0 else { throw FaultlineError(.io, "cannot sync '\(path)': \(String(cString: strerror(errno)))") }
        return size
    }

    static func writeZeros(fd: Int32, bytes: UInt64, path: String) throws(FaultlineError) {
        let chunk = [UInt8](repeating: 0, count: 1 << 20)
        var left = bytes
        while left > 0 {
            let count = Int(min(left, UInt64(chunk.count)))
            let written = chunk.withUnsafeBytes { write(fd, $0.baseAddress, count) }
            guard written > 0 else { throw FaultlineError(.io, "cannot write to '\(path)': \(String(cString: strerror(errno)))") }
            left -= UInt64(written)
        }
    }

    /// Removes `path`; true if it was there.
    @discardableResult
    public static func remove(_ path: String) throws(FaultlineError) -> Bool {
        if unlink(path) == 0 { return true }
        // Never created, or its directory is gone or was replaced by a file: nothing of the fault is left.
        if errno == ENOENT || errno == ENOTDIR { return false }
        throw FaultlineError(.io, "cannot remove '\(path)': \(String(cString: strerror(errno)))")
    }

    public static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}
