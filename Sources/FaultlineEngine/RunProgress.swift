import FaultlineCore
import Synchronization

extension ExperimentRunner {
    /// What became of each fault, filled in as the method runs.
    final class FaultProgress: Sendable {
        struct Entry {
            var injectedAt: Double?
            var revertedAt: Double?
            var state = FaultRunState.notInjected
            var error: String?
            /// Set as its revert begins: from then on it may no longer hold.
            var reverting = false
            /// Why it did not fully act, when it did not (its delayer or hog ended early, less was filled than asked).
            var degraded: String?
            /// What happened to its target while it was in place (its container restarted), for the report.
            var note: String?
            /// What shows it acted, read before its revert.
            var evidence: FaultEvidence?
            /// Why what it did could not be read, when it could not.
            var evidenceError: String?
            /// Its inject ended only after the method had (a slow inject past maxDuration): nothing watched it.
            var afterMethod = false

            /// In place, and not on its way out.
            var inPlace: Bool { state == .active && !reverting }
        }

        private let entries = Mutex<[String: Entry]>([:])

        func update(_ fault: String, _ change: (inout Entry) -> Void) {
            entries.withLock { change(&$0[fault, default: Entry()]) }
        }

        subscript(fault: String) -> Entry { entries.withLock { $0[fault] ?? Entry() } }
    }

    /// Whether the run's abort has been logged: once, by the probe whose results fired it or else when it fires.
    final class AbortLog: Sendable {
        private let logged = Mutex(false)

        /// True the first time only.
        func claim() -> Bool { logged.withLock { was in defer { was = true }; return !was } }
    }
}


/// Counts down to zero from several tasks.
final class Countdown: Sendable {
    private let count: Mutex<Int>
    init(_ count: Int) { self.count = Mutex(count) }
    /// One less; true for the call that reaches zero.
    func tick() -> Bool {
        count.withLock { count in
            count -= 1
            return count == 0
        }
    }
}
