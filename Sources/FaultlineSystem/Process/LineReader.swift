import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The read end of a child's output pipe, read without blocking and split into lines.
public final class LineReader: Sendable {
    private struct State {
        var fd: Int32 = -1
        var pending: [UInt8] = []
        var lines: [String] = []
    }
    private let state = Mutex(State())

    /// Takes `fd` (made non-blocking here, closed by `close()`).
    public init(fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        state.withLock { $0.fd = fd }
    }

    /// Lines read but not yet handled: the next read returns them first.
    public func putBack(_ lines: [String]) {
        state.withLock { $0.lines = lines + $0.lines }
    }

    /// Closes the pipe, once; what was read and not taken is still returned.
    public func close() {
        state.withLock { state in
            if state.fd >= 0 { _ = Glibc.close(state.fd) }
            state.fd = -1
        }
    }

    /// The whole lines written so far, and whether the writer has closed its end (or this end was closed).
    public func readAvailable() -> (lines: [String], ended: Bool) {
        state.withLock { state in
            guard state.fd >= 0 else { defer { state.lines = [] }; return (state.lines, true) }
            var ended = false
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(state.fd, $0.baseAddress, $0.count) }
                if n > 0 { state.pending += buffer[0..<n]; continue }
                if n == 0 { ended = true }
                if n < 0, errno == EINTR { continue }
                break
            }
            var lines = state.lines
            state.lines = []
            while let newline = state.pending.firstIndex(of: UInt8(ascii: "\n")) {
                lines.append(String(decoding: state.pending[..<newline], as: UTF8.self))
                state.pending.removeSubrange(...newline)
            }
            if ended, !state.pending.isEmpty {
                lines.append(String(decoding: state.pending, as: UTF8.self))
                state.pending = []
            }
            return (lines, ended)
        }
    }

    deinit { close() }
}
