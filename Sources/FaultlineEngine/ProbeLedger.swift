import FaultlineCore
import FaultlineProbes
import Foundation
import Synchronization

/// Every probe result of a run, and the abort conditions judged on them as they come.
public final class ProbeLedger: Sendable {
    private struct State {
        var samples: [RunReport.ProbeSample] = []
        var consecutiveFailures: [String: Int] = [:]
    }

    private let state = Mutex(State())
    public let steadyState: SteadyState?

    public init(steadyState: SteadyState?) { self.steadyState = steadyState }

    public var samples: [RunReport.ProbeSample] { state.withLock { $0.samples } }

    /// Whether a result counts as good for the SLO: ok, and (for http, and tcp that must connect) not slower than its bound.
    func isGood(_ probe: Probe, _ outcome: ProbeOutcome) -> Bool {
        guard outcome.ok else { return false }
        guard let bound = steadyState?.slo?.latency else { return true }
        switch probe.check {
        case .http: return outcome.latency * 1_000_000 <= Double(bound.microseconds)
        // A connect that must fail may well take its whole timeout to fail.
        case .tcp(let tcp): return tcp.expect == .unreachable || outcome.latency * 1_000_000 <= Double(bound.microseconds)
        default: return true
        }
    }

    /// Records a result; during the method, returns the abort reason if this result meets an abort condition.
    /// `traceID` is kept for bad results only (the report lists them).
    public func record(_ probe: Probe, _ outcome: ProbeOutcome, phase: RunReport.ProbeSample.Phase, at: Double, traceID: String? = nil) -> String? {
        let good = isGood(probe, outcome)
        let sample = RunReport.ProbeSample(probe: probe.name.rawValue, phase: phase, at: at, ok: outcome.ok, good: good,
                                           latency: outcome.latency, detail: outcome.detail, traceID: good ? nil : traceID)
        return state.withLock { state -> String? in
            state.samples.append(sample)
            guard phase == .method, let conditions = steadyState?.abortWhen else { return nil }
            let name = probe.name.rawValue
            state.consecutiveFailures[name] = good ? 0 : (state.consecutiveFailures[name] ?? 0) + 1
            if let limit = conditions.consecutiveFailures, let count = state.consecutiveFailures[name], count >= limit {
                // A result that passed its check but was too slow says so, not only "status 200".
                let why = outcome.ok && !good
                    ? "\(outcome.detail) in \(Int((outcome.latency * 1000).rounded()))ms, slower than the slo's \(steadyState?.slo?.latency.map { "\($0)" } ?? "bound")"
                    : outcome.detail
                return "probe '\(name)' failed \(count) times in a row (\(why))"
            }
            if let burn = conditions.burnRate, let objective = steadyState?.slo?.objective {
                var count = 0, bad = 0
                for sample in state.samples.reversed() {
                    if sample.phase != .method { continue }
                    if sample.at < at - burn.window.seconds { break }
                    count += 1
                    if !sample.good { bad += 1 }
                }
                let badShare = Double(bad) / Double(max(count, 1))
                let allowed = burn.factor * (1 - objective.fraction)
                // "Exceeds" as the format says: exactly at the limit is not over it (1 − 0.9 is 0.0999… in binary).
                if !good, count >= 2, badShare > allowed + 1e-9 {
                    return "error budget burning too fast: \(Int((badShare * 100).rounded()))% bad in the last \(burn.window) (limit \(TimeSpan.trim(allowed * 100))%, probe '\(name)')"
                }
            }
            return nil
        }
    }

    /// The SLO verdict over the method's results.
    public func verdict() -> RunReport.SLOVerdict? {
        guard let slo = steadyState?.slo else { return nil }
        let method = samples.filter { $0.phase == .method }
        let good = method.filter(\.good).count
        let share = method.isEmpty ? 1 : Double(good) / Double(method.count)
        let budget = 1 - slo.objective.fraction
        let used = budget > 0 ? (1 - share) / budget : (share < 1 ? Double.infinity : 0)
        return RunReport.SLOVerdict(objective: slo.objective.value, good: good, total: method.count, met: share >= slo.objective.fraction,
                                    budgetUsed: used.isFinite ? used : 999)
    }
}
