import FaultlineCore
import Synchronization

/// Why the method stopped before its natural end.
public enum StopReason: Sendable, Hashable {
    case methodComplete
    /// Stopped early: why, in words, and the probe whose results met an abort condition.
    case abort(AbortCause, String, probe: String? = nil)
    case interrupted
    case deadline
}

/// A one-shot signal that ends every wait of the method at once: abort, interrupt or the end.
/// Waits race a timer against it without cancelling the tasks that must revert.
public final class StopSignal: Sendable {
    private struct State {
        var reason: StopReason?
        var firedAt: ContinuousClock.Instant?
        /// Set by every `.interrupted`, also one that comes after another reason fired (a Ctrl-C during the recovery
        /// window that follows an abort).
        var interrupted = false
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var next = 0
    }

    private let state = Mutex(State())

    public init() {}

    /// The first reason given, if any.
    public var reason: StopReason? { state.withLock { $0.reason } }
    /// When it fired.
    public var firedAt: ContinuousClock.Instant? { state.withLock { $0.firedAt } }
    /// Whether someone asked to stop (SIGINT, SIGTERM...), whatever fired first.
    public var isInterrupted: Bool { state.withLock { $0.interrupted } }

    /// Fires with `reason` unless already fired; wakes every waiter. Whether this call fired it.
    @discardableResult
    public func fire(_ reason: StopReason) -> Bool {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
            if reason == .interrupted { state.interrupted = true }
            guard state.reason == nil else { return nil }
            state.reason = reason
            state.firedAt = .now
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        guard let waiters else { return false }
        waiters.forEach { $0.resume() }
        return true
    }

    /// Returns once fired (or when the calling task is cancelled).
    public func wait() async {
        let id = state.withLock { state -> Int in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.reason != nil || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Sleeps until `instant` unless the signal fires first; true when it fired.
    public func sleep(until instant: ContinuousClock.Instant) async -> Bool {
        if reason != nil { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await Task.sleep(until: instant, clock: .continuous)
                return false
            }
            group.addTask {
                await self.wait()
                return true
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first || reason != nil
        }
    }
}
