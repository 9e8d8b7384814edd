import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Whole small files read with open, read and close. /proc files say their size is 0, and Foundation's
/// `Data(contentsOf:)` and `String(contentsOfFile:)` keep (leak) their 4 KiB buffer when such a read returns
/// nothing — an empty /proc/PID/cmdline of every kernel thread or zombie, on every process scan (measured: 4,112
/// bytes a read, which made a long-lived agent grow about 4 KB a run).
public enum FileBytes {
    /// The file's bytes, at most `limit` of them; nil when it cannot be opened or read.
    public static func read(_ path: String, limit: Int = 16 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4_096)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, min($0.count, limit - bytes.count)) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }

    /// The file as UTF-8 text (invalid bytes replaced); nil when it cannot be read.
    public static func text(_ path: String, limit: Int = 16 << 20) -> String? {
        read(path, limit: limit).map { String(decoding: $0, as: UTF8.self) }
    }
}
