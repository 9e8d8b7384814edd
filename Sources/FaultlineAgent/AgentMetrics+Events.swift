import FaultlineCore
import FaultlineEngine

extension AgentMetrics {
    /// Counts what a run's event says: injects, reverts (and the faults active), probe results. `type` is the
    /// fault's type; `previous` its state before the event.
    func observe(_ event: RunEvent, type: String?, previous: FaultRunState?) {
        switch event {
        case .probed(let probe, _, let ok, let latency):
            probed(probe, ok: ok, latency: latency)
        case .injected:
            if let type { injected(type, ok: true, becameActive: previous != .active) }
        case .injectFailed:
            if let type { injected(type, ok: false, becameActive: false) }
        case .reverted(_, let seconds, _):
            if let type { reverted(type, ok: true, seconds: seconds, wasActive: previous == .active) }
        case .evidence(_, let evidence):
            if let type { self.evidence(type, evidence) }
        case .revertFailed(_, _, let seconds):
            if let type { reverted(type, ok: false, seconds: seconds, wasActive: previous == .active) }
        default: break
        }
    }
}
