import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes to stderr, where logs and errors go. Once stderr is a pipe nobody reads (EPIPE), later writes are
/// dropped: losing the log must never stop a revert.
enum StandardError {
    /// Set at the first EPIPE on stderr.
    private static let gone = Atomic<Bool>(false)

    static func write(_ text: String) {
        guard !gone.load(ordering: .relaxed) else { return }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written < 0 && errno == EPIPE { gone.store(true, ordering: .relaxed) }
            if written <= 0 { return }
            offset += written
        }
    }
}
