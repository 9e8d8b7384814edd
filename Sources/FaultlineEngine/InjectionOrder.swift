import FaultlineCore
import Synchronization

/// Faults inject one at a time, in timeline order (start, then their order in the scenario): each waits until the
/// one before it has tried, so once a failed inject has declared the abort no later fault starts to inject — not
/// even one scheduled for the same instant.
final class InjectionOrder: Sendable {
    private struct State {
        var finished: Set<Int> = []
        var waiting: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())
    /// Each fault's place in the order, by its index in the scenario.
    let turns: [Int]

    init(_ faults: [Fault]) {
        let order = faults.indices.sorted { (faults[$0].start.microseconds, $0) < (faults[$1].start.microseconds, $1) }
        var turns = Array(repeating: 0, count: faults.count)
        for (turn, index) in order.enumerated() { turns[index] = turn }
        self.turns = turns
    }

    /// Waits until every fault before `turn` has tried to inject (or gave up).
    func wait(_ turn: Int) async {
        if turn == 0 { return }
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Bool in
                if state.finished.contains(turn - 1) { return true }
                state.waiting[turn] = continuation
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// `turn` has tried (injected, failed and declared the abort, or skipped): the next may go.
    func finish(_ turn: Int) {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.finished.insert(turn)
            return state.waiting.removeValue(forKey: turn + 1)
        }
        next?.resume()
    }
}
