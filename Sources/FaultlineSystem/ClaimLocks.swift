import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Locks on what a run acts on (an interface in a namespace, a directory, a process), one file each under the
/// state directory, held with flock(2) while the run lasts: a second run that wants one refuses before it applies
/// anything, naming the run that holds it. The kernel drops a lock when its holder dies.
public final class ClaimLocks: Sendable {
    private let descriptors: [Int32]

    init(descriptors: [Int32]) { self.descriptors = descriptors }

    deinit { for fd in descriptors { close(fd) } }

    /// A claim that another run holds.
    public struct Held: Error, Sendable {
        public var claim: String
        /// What the holder wrote: its run id and pid.
        public var holder: String
    }

    /// Takes every lock of `claims` for run `runID`, or none: throws `Held` for the first taken by another run.
    public static func take(_ claims: Set<String>, runID: String, directory: String) throws -> ClaimLocks {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var taken: [Int32] = []
        for claim in claims.sorted() {
            let path = directory + "/" + fileName(claim)
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                for held in taken { close(held) }
                throw FaultlineError(.io, "cannot open the lock \(path): \(String(cString: strerror(errno)))")
            }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                var buffer = [UInt8](repeating: 0, count: 256)
                let count = pread(fd, &buffer, buffer.count, 0)
                close(fd)
                for held in taken { close(held) }
                let holder = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : "another run"
                throw Held(claim: claim, holder: holder)
            }
            let text = "run \(runID) (pid \(getpid()))\n"
            _ = ftruncate(fd, 0)
            _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
            taken.append(fd)
        }
        return ClaimLocks(descriptors: taken)
    }

    /// A file name for a claim: its letters and digits, the rest as '_'.
    static func fileName(_ claim: String) -> String {
        String(claim.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") ? $0 : "_" }.prefix(200)) + ".lock"
    }
}
