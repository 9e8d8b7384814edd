import FaultlineCore
import FaultlineEngine
import FaultlineSystem
import Foundation
import Synchronization

/// One run the agent knows: its status, its event stream (kept and fanned out to SSE readers), its report.
final class AgentRun: Sendable {
    let id: String
    /// Ends every wait of the run's method at once (abort from the API, lease, shutdown).
    let stop = StopSignal()
    /// Where its status, events and report are kept across restarts.
    let directory: String
    /// Each probe's results so far while its method runs.
    let monitor = RunMonitor()

    private struct Inner {
        var status: RunStatus
        var events: [RunStreamEvent] = []
        var readers: [Int: AsyncStream<RunStreamEvent>.Continuation] = [:]
        var nextReader = 0
        /// The state directory's locks on what the run acts on, held while it goes on (shared with `faultline run`).
        var locks: ClaimLocks?
        /// Fault name → type, to label metrics.
        var types: [String: String] = [:]
        /// Why the agent stopped it (a label of faultline_aborts_total), when it did.
        var abortCause: AbortCause?
    }

    private let inner: Mutex<Inner>
    /// The last status answered and its JSON, so that polling controllers cost a comparison, not an encoding.
    private let encoded = Mutex<(status: RunStatus, json: Data)?>(nil)

    init(status: RunStatus, directory: String, events: [RunStreamEvent] = []) {
        id = status.id
        self.directory = directory
        var inner = Inner(status: status)
        inner.events = events
        for fault in status.faults { inner.types[fault.name] = fault.type }
        self.inner = Mutex(inner)
    }

    /// The status as kept (without the probes' progress of a running run: see `liveStatus`).
    var status: RunStatus { inner.withLock { $0.status } }

    /// The status the API answers: while the method runs, with each probe's results so far (summed at most every
    /// 250 ms, so that polling controllers do not cost a pass over every result each).
    var liveStatus: RunStatus {
        var status = status
        if !status.state.isFinal, let snapshot = recentSnapshot() {
            status.probes = snapshot.probes
            status.slo = snapshot.slo
        }
        return status
    }

    private let snapshot = Mutex<(at: ContinuousClock.Instant, value: RunSnapshot)?>(nil)

    func recentSnapshot() -> RunSnapshot? {
        if let cached = snapshot.withLock({ $0 }), ContinuousClock.now - cached.at < .milliseconds(250) { return cached.value }
        guard let fresh = monitor.snapshot() else { return nil }
        snapshot.withLock { $0 = (.now, fresh) }
        return fresh
    }

    /// The status as API JSON.
    var statusJSON: Data {
        let current = liveStatus
        if let cached = encoded.withLock({ $0 }), cached.status == current { return cached.json }
        let json = (try? JSONEncoder.api.encode(current)) ?? Data()
        encoded.withLock { $0 = (current, json) }
        return json
    }
    /// Starts the run with `change` and keeps its locks until it is over, unless it ended meanwhile (a scheduled run
    /// aborted while it was being admitted): the check and the change under one lock, so an abort cannot come
    /// between them. Whether it started.
    func begin(holding locks: ClaimLocks, _ change: (inout RunStatus) -> Void) -> Bool {
        let started = inner.withLock { inner -> RunStatus? in
            guard !inner.status.state.isFinal else { return nil }
            inner.locks = locks
            change(&inner.status)
            return inner.status
        }
        guard let started else { return false }
        persist(started)
        return true
    }

    /// Ends a run that has not started yet with `change`; false (nothing changed) when it started meanwhile.
    func cancelIfScheduled(_ change: (inout RunStatus) -> Void) -> Bool {
        let cancelled = inner.withLock { inner -> RunStatus? in
            guard inner.status.state == .scheduled else { return nil }
            change(&inner.status)
            return inner.status
        }
        guard let cancelled else { return false }
        persist(cancelled)
        endStreams()
        return true
    }

    func faultType(_ name: String) -> String? {
        inner.withLock { inner in inner.types[name] ?? inner.status.faults.first { $0.name == name }?.type }
    }

    var abortCause: AbortCause? { inner.withLock { $0.abortCause } }

    /// Asks a running run to stop and revert; false when it is already over or already stopping (for another cause,
    /// an abort condition, the method's end): the cause and reason of the first stop stand.
    func abort(cause: AbortCause, reason: String) -> Bool {
        guard inner.withLock({ !$0.status.state.isFinal && $0.abortCause == nil }), stop.fire(.abort(cause, reason)) else { return false }
        let status = inner.withLock { inner -> RunStatus in
            inner.abortCause = cause
            if inner.status.state == .running { inner.status.state = .reverting }
            if inner.status.reason == nil { inner.status.reason = reason }
            return inner.status
        }
        persist(status)
        return true
    }

    /// Changes the status and keeps it on disk.
    func update(_ change: (inout RunStatus) -> Void) {
        let status = inner.withLock { inner -> RunStatus in
            change(&inner.status)
            if inner.status.state.isFinal { inner.locks = nil }
            return inner.status
        }
        persist(status)
    }

    /// Records an engine event: the fault states it implies, the stream, the file. Returns the fault's state before.
    @discardableResult
    func record(_ event: RunEvent, at date: Date) -> FaultRunState? {
        guard event.level != .debug else { return nil }
        var previous: FaultRunState?
        let before = inner.withLock { $0.status }
        let (streamed, readers) = inner.withLock { inner -> (RunStreamEvent, [AsyncStream<RunStreamEvent>.Continuation]) in
            func change(_ fault: String, _ edit: (inout RunStatus.FaultStatus) -> Void) {
                guard let index = inner.status.faults.firstIndex(where: { $0.name == fault }) else { return }
                previous = inner.status.faults[index].state
                edit(&inner.status.faults[index])
            }
            switch event {
            case .injected(let fault, _, _):
                change(fault) { fault in
                    fault.state = .active
                    if fault.injectedAt == nil { fault.injectedAt = date }
                }
            case .injectFailed(let fault, let error, false):
                change(fault) { fault in
                    guard fault.state != .active else { return }
                    fault.state = .failed
                    fault.error = error
                }
            case .reverted(let fault, _, _):
                change(fault) { fault in
                    fault.state = .reverted
                    fault.revertedAt = date
                }
            case .evidence(let fault, let evidence):
                change(fault) { $0.evidence = evidence }
            case .revertFailed(let fault, let error, _):
                change(fault) { fault in
                    fault.state = .revertFailed
                    fault.error = error
                }
            case .aborted:
                if inner.status.state == .running { inner.status.state = .reverting }
            default: break
            }
            let streamed = RunStreamEvent(seq: inner.events.count + 1, ts: date, level: event.level, event: event.name,
                                          message: event.message, fault: event.fault, probe: event.probe)
            inner.events.append(streamed)
            return (streamed, Array(inner.readers.values))
        }
        for reader in readers { reader.yield(streamed) }
        append(streamed)
        // Fault and run states are kept on disk as they change, so a restarted agent knows what was active.
        let after = inner.withLock { $0.status }
        if after.state != before.state || after.faults != before.faults { persist(after) }
        return previous
    }

    /// Sends every reader a keep-alive (sequence number 0: written as an SSE comment, never stored).
    func keepAlive() {
        let readers = inner.withLock { Array($0.readers.values) }
        let beat = RunStreamEvent(seq: 0, ts: Date(), level: .debug, event: .other, message: "")
        for reader in readers { reader.yield(beat) }
    }

    /// The events so far, and a stream of the ones to come (nil once the run is over).
    func subscribe(follow: Bool = true) -> (backlog: [RunStreamEvent], live: AsyncStream<RunStreamEvent>?) {
        guard follow else { return (inner.withLock { $0.events }, nil) }
        let (stream, continuation) = AsyncStream<RunStreamEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let backlog = inner.withLock { inner -> [RunStreamEvent]? in
            if inner.status.state.isFinal { return nil }
            inner.nextReader += 1
            let reader = inner.nextReader
            inner.readers[reader] = continuation
            continuation.onTermination = { [weak self] _ in
                self?.inner.withLock { _ = $0.readers.removeValue(forKey: reader) }
            }
            return inner.events
        }
        guard let backlog else { return (inner.withLock { $0.events }, nil) }
        return (backlog, stream)
    }

    /// The run is over: its final status, and every reader's stream ends.
    func finish(_ change: (inout RunStatus) -> Void) {
        update(change)
        endStreams()
    }

    /// Ends every open event stream (the run is over).
    func endStreams() {
        let readers = inner.withLock { inner -> [AsyncStream<RunStreamEvent>.Continuation] in
            defer { inner.readers.removeAll() }
            return Array(inner.readers.values)
        }
        for reader in readers { reader.finish() }
    }

    // MARK: Files

    func persist(_ status: RunStatus) {
        guard let data = try? JSONEncoder.api.encode(status) else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? data.write(to: URL(fileURLWithPath: directory + "/status.json"), options: .atomic)
    }

    func append(_ event: RunStreamEvent) {
        guard var data = try? JSONEncoder.api.encode(event) else { return }
        data.append(0x0A)
        let path = directory + "/events.jsonl"
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.seekToEndOfFile()
            handle.write(data)
            try? handle.close()
        } else {
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: path, contents: data)
        }
    }

    /// A run kept by an earlier life of the agent, from its directory.
    static func load(from directory: String) -> AgentRun? {
        let decoder = JSONDecoder.api
        guard let data = FileManager.default.contents(atPath: directory + "/status.json"),
              let status = try? decoder.decode(RunStatus.self, from: data) else { return nil }
        let lines = (FileManager.default.contents(atPath: directory + "/events.jsonl") ?? Data()).split(separator: 0x0A)
        let events = lines.compactMap { try? decoder.decode(RunStreamEvent.self, from: Data($0)) }
        return AgentRun(status: status, directory: directory, events: events)
    }
}
