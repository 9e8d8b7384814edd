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
        guard let argv = planned.inject.lazy.compactMap({ if case .start(let argv, .delayer) = $0 { argv } else { nil } }).first else {
            throw FaultlineError(.internalError, "nfqueue driver without a delayer command")
        }
        let launched = try context.launcher.start(argv, output: .pipe)
        let child = launched.identity
        if let reader = launched.output { output.attach(reader) }
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
                context.launcher.reap(child.pid)
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

    /// The packets its rules sent to the delayer's queue.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        try await StepsDriver(context: context).evidence(record)
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

/// The delayer's output, once it is started: `apply` waits on it for `ready`, `watch` reads the rest.
final class DelayerOutput: Sendable {
    private let reader = Mutex<LineReader?>(nil)

    func attach(_ reader: LineReader) { self.reader.withLock { $0 = reader } }

    /// Lines read but not yet handled: the next read returns them first.
    func putBack(_ lines: [String]) { reader.withLock { $0 }?.putBack(lines) }

    func closeIfOpen() { reader.withLock { $0 }?.close() }

    /// The whole lines written so far, and whether the writer has closed its end (or there is none).
    func readAvailable() -> (lines: [String], ended: Bool) { reader.withLock { $0 }?.readAvailable() ?? ([], true) }
}
