import FaultlineCore
import Foundation
import Synchronization

/// What a run has seen so far, for whoever watches it while it goes: the agent's status and the terminal's live view.
public final class RunMonitor: Sendable {
    /// The run's own records, attached when its method starts.
    struct Source: @unchecked Sendable {
        // @unchecked: every field is itself Sendable or immutable; the clock instant is a value.
        let plan: Plan
        let progress: ExperimentRunner.FaultProgress
        let ledger: ProbeLedger
        let methodStart: ContinuousClock.Instant
    }

    private let source = Mutex<Source?>(nil)

    public init() {}

    func attach(_ source: Source) { self.source.withLock { $0 = source } }

    /// Lets the run's records go (its results are in its report and final status by now).
    public func detach() { source.withLock { $0 = nil } }

    /// Each probe's results so far and the SLO's budget and burn rate; nil before the method starts.
    public func snapshot() -> RunSnapshot? {
        guard let source = source.withLock({ $0 }) else { return nil }
        return RunSnapshot(samples: source.ledger.samples, steadyState: source.ledger.steadyState,
                           now: (ContinuousClock.now - source.methodStart).seconds)
    }
}

/// Each probe's results and the SLO's state at one moment of a run (or at its end, from its report).
public struct RunSnapshot: Sendable, Codable, Hashable {
    /// One probe's results so far, every phase together.
    public struct Probe: Sendable, Codable, Hashable {
        public var probe: String
        public var count: Int
        /// Good for the SLO: ok, and not slower than its latency bound.
        public var good: Int
        public var bad: Int
        /// The latest result: whether it passed, how long it took (seconds) and what it said.
        public var latestOK: Bool
        public var latestLatency: Double
        public var latestDetail: String
        /// The 95th percentile of its latencies, in seconds (nearest rank).
        public var p95: Double
    }

    /// The SLO over the method's results so far.
    public struct SLO: Sendable, Codable, Hashable {
        /// The objective, in percent.
        public var objective: Double
        public var good: Int
        public var total: Int
        /// Share of the error budget used (1.0 = all of it).
        public var budgetUsed: Double
        /// The bad share in the last `window` over the share the objective allows (1.0 spends the budget exactly
        /// over the SLO's period); nil before any result of the method.
        public var burnRate: Double?
        /// Seconds: the abort condition's burn-rate window, or 60.
        public var window: Double
    }

    public var probes: [Probe]
    public var slo: SLO?

    /// From the results so far; `now` in seconds after the method began (the burn-rate window ends there).
    public init(samples: [RunReport.ProbeSample], steadyState: SteadyState?, now: Double) {
        var order: [String] = []
        var byProbe: [String: [RunReport.ProbeSample]] = [:]
        for sample in samples {
            if byProbe[sample.probe] == nil { order.append(sample.probe) }
            byProbe[sample.probe, default: []].append(sample)
        }
        probes = order.map { name in
            let results = byProbe[name] ?? []
            let good = results.filter(\.good).count
            let latencies = results.map(\.latency).sorted()
            let rank = max(0, Int((0.95 * Double(latencies.count)).rounded(.up)) - 1)
            let latest = results.last
            return Probe(probe: name, count: results.count, good: good, bad: results.count - good, latestOK: latest?.ok ?? false,
                         latestLatency: latest?.latency ?? 0, latestDetail: latest?.detail ?? "",
                         p95: latencies.isEmpty ? 0 : latencies[min(rank, latencies.count - 1)])
        }
        slo = steadyState?.slo.map { slo in
            let method = samples.filter { $0.phase == .method }
            let good = method.filter(\.good).count
            let budget = 1 - slo.objective.fraction
            let badShare = method.isEmpty ? 0 : 1 - Double(good) / Double(method.count)
            let used = budget > 0 ? badShare / budget : (badShare > 0 ? 999 : 0)
            let window = steadyState?.abortWhen?.burnRate?.window.seconds ?? 60
            let recent = method.filter { $0.at >= now - window }
            let burn: Double? = recent.isEmpty ? nil : {
                let share = Double(recent.filter { !$0.good }.count) / Double(recent.count)
                return budget > 0 ? share / budget : (share > 0 ? 999 : 0)
            }()
            return SLO(objective: slo.objective.value, good: good, total: method.count, budgetUsed: min(used, 999), burnRate: burn.map { min($0, 999) },
                       window: window)
        }
    }
}
