import FaultlineCore
import FaultlineSystem
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// latency, packet-loss and duplicate with the nfqueue engine: starts the `faultline delayer` process, waits until
/// it has bound its queue, then adds the iptables rules that feed it. Revert removes the rules first
/// (no new packets reach the queue), then stops the delayer, which lets every held packet go.
struct DelayerDriver: FaultDriver {
    let planned: PlannedFault?
    let context: DriverContext
    let output = DelayerOutput()
    let startTimeout: Duration = .seconds(5)

    /// How many queues are tried when the planned one is bound by another program (another run's delayer, say).
    static let queueAttempts = 16

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        guard var planned, let first = planned.queue else {
            throw FaultlineError(.internalError, "nfqueue driver without a delayer command")
        }
        // The planned queue may be taken (queues are per namespace, 256 of them for Faultline): take the next free one.
        for attempt in 0..<Self.queueAttempts {
            do {
                return try await apply(planned, journal: journal)
            } catch where error.message.contains("is bound by another program") && attempt + 1 < Self.queueAttempts {
                planned = planned.usingQueue(0xFA00 | ((first &+ UInt16(attempt + 1)) & 0xFF))
            }
        }
        throw FaultlineError(.internalError, "unreachable: every queue attempt returns or throws")
    }

    func apply(_ planned: PlannedFault, journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        guard let argv = planned.inject.lazy.compactMap({ if case .start(let argv) = $0 { argv } else { nil } }).first else {
            throw FaultlineError(.internalError, "nfqueue driver without a delayer command")
        }
        let (child, fd) = try ChildProcess.spawnWithPipe(argv, table: context.processes)
        output.attach(fd)
        let stop = RevertRecord.stopProcess(child)
        let record = RevertRecord.steps([NetworkDriver.record(of: planned), stop])
        do {
            try await journal.record(.steps([stop]))
            try await waitUntilReady(child)
            try await journal.record(record)
        } catch {
            try? await Drivers.driver(for: stop, context: context).revert(stop)
            output.closeIfOpen()
            throw error
        }
        try await NetworkDriver.runInject(planned, runner: context.runner, undoing: record, with: self)
        return record
    }

    /// Waits for the delayer's `ready` line; its error output when it exits first. Whatever else it says
    /// meanwhile (a warning before it bound the queue) is left for `watch` to report.
    func waitUntilReady(_ child: ProcessIdentity) async throws(FaultlineError) {
        let clock = ContinuousClock()
        let deadline = clock.now + startTimeout
        var said: [String] = []
        while clock.now < deadline {
            let (lines, ended) = output.readAvailable()
            said += lines.filter { !$0.hasPrefix("ready") }
            if lines.contains(where: { $0.hasPrefix("ready") }) {
                output.putBack(said)
                return
            }
            if ended {
                ChildProcess.reap(child.pid)
                let text = said.map { $0.hasPrefix("error: ") ? String($0.dropFirst(7)) : $0 }.joined(separator: "; ")
                throw FaultlineError(.commandFailed, "the nfqueue delayer did not start: \(text.isEmpty ? "it exited" : text)")
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
        throw FaultlineError(.commandFailed, "the nfqueue delayer did not bind its queue within \(startTimeout)")
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        try await StepsDriver(context: context).verify(record)
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        try await StepsDriver(context: context).revert(record)
    }

    /// Forwards the delayer's warnings and its closing statistics; a delayer that exits while the
    /// fault is in place is reported (traffic then passes undelayed: the rule has --queue-bypass).
    func watch(report: @escaping @Sendable (FaultReport) -> Void) async {
        defer { output.closeIfOpen() }
        while true {
            let cancelled = Task.isCancelled
            let (lines, ended) = output.readAvailable()
            for line in lines {
                if line.hasPrefix("warning: ") {
                    report(FaultReport(level: .warning, message: "delayer: " + line.dropFirst(9)))
                } else if line.hasPrefix("stats: ") {
                    report(FaultReport(level: .info, message: "delayer statistics: " + line.dropFirst(7)))
                } else if line.hasPrefix("error: ") {
                    report(FaultReport(level: .warning, message: "delayer: " + line.dropFirst(7)))
                }
            }
            if ended {
                if !cancelled, !lines.contains(where: { $0.hasPrefix("stats: ") }) {
                    report(FaultReport(level: .failure, message: "the delayer ended while the fault was in place: its traffic passed undelayed from then on"))
                }
                return
            }
            if cancelled { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// The read end of the delayer's output pipe, split into lines.
final class DelayerOutput: Sendable {
    private struct State {
        var fd: Int32 = -1
        var pending: [UInt8] = []
        var lines: [String] = []
    }
    private let state = Mutex(State())

    func attach(_ fd: Int32) {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        state.withLock { $0.fd = fd; $0.pending = []; $0.lines = [] }
    }

    /// Lines read but not yet handled: the next read returns them first.
    func putBack(_ lines: [String]) {
        state.withLock { $0.lines = lines + $0.lines }
    }

    func closeIfOpen() {
        state.withLock { state in
            if state.fd >= 0 { close(state.fd) }
            state.fd = -1
        }
    }

    /// The whole lines written so far, and whether the writer has closed its end.
    func readAvailable() -> (lines: [String], ended: Bool) {
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
}
