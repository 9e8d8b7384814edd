import Foundation

/// What the faults did to each probe, phase by phase: the baseline before the first fault, each fault's window, the
/// gaps between windows, and after the last revert; how soon a probe saw each fault, and how soon it recovered.
extension RunReport {
    /// One probe in one phase (report.json `impact[]`). Latencies in seconds; nil with no result.
    public struct ImpactRow: Sendable, Codable, Hashable {
        public enum Phase: String, Sendable, Codable { case baseline, fault, between, after }
        public var probe: String
        public var phase: Phase
        /// The fault whose window this is (`fault` rows only).
        public var fault: String?
        /// Seconds after the method started: where the phase begins and ends (open ends: nil).
        public var from: Double?
        public var to: Double?
        public var count: Int
        /// Bad results (failed, or slower than the SLO's bound) over all of them; 0 with none.
        public var errorRate: Double
        public var p50: Double?
        public var p95: Double?
        public var p99: Double?
    }

    /// The first bad result of a probe after a fault went in (report.json `detection[]`).
    public struct Detection: Sendable, Codable, Hashable {
        public var fault: String
        public var probe: String
        /// Seconds after the method started.
        public var at: Double
        /// Time to detect: from the inject to that result.
        public var seconds: Double
    }

    /// How long a probe took, after a fault's revert, to be back within its baseline (report.json `recovery[]`):
    /// its first good result no slower than the baseline's p95 with some slack (`recoveredBound`). `seconds` nil: it
    /// never came back in the run.
    public struct Recovery: Sendable, Codable, Hashable {
        public var fault: String
        public var probe: String
        public var seconds: Double?
    }

    /// The rows of `impact`, in probe order, each probe's phases in time order.
    public static func impact(probes samples: [ProbeSample], faults: [FaultRecord]) -> [ImpactRow] {
        let windows = Self.windows(faults)
        let names = samples.map(\.probe).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        guard let firstInject = windows.map(\.from).min() else {
            // Nothing was injected: all of the run is the baseline.
            return names.map { name in Self.row(name, .baseline, nil, nil, nil, samples.filter { $0.probe == name }) }
        }
        let lastRevert = windows.map(\.to).max() ?? firstInject
        var rows: [ImpactRow] = []
        for name in names {
            let own = samples.filter { $0.probe == name }
            rows.append(Self.row(name, .baseline, nil, nil, firstInject, own.filter { $0.at < firstInject }))
            // Fault windows and the gaps between them, in time order.
            var cursor = firstInject
            for window in windows.sorted(by: { ($0.from, $0.to) < ($1.from, $1.to) }) {
                // Windows are taken by their start and the cursor is the latest end so far: no fault is in place
                // between the cursor and this window's start.
                if window.from > cursor {
                    rows.append(Self.row(name, .between, nil, cursor, window.from, own.filter { $0.at >= cursor && $0.at < window.from }))
                }
                rows.append(Self.row(name, .fault, window.name, window.from, window.to, own.filter { $0.at >= window.from && $0.at < window.to }))
                cursor = max(cursor, window.to)
            }
            rows.append(Self.row(name, .after, nil, lastRevert, nil, own.filter { $0.at >= lastRevert }))
        }
        return rows
    }

    /// Each fault's first bad result per probe, from its inject to its revert.
    public static func detection(probes samples: [ProbeSample], faults: [FaultRecord]) -> [Detection] {
        windows(faults).flatMap { window in
            samples.map(\.probe).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }.compactMap { probe in
                samples.first { $0.probe == probe && !$0.good && $0.at >= window.from && $0.at < window.to }
                    .map { Detection(fault: window.name, probe: probe, at: $0.at, seconds: $0.at - window.from) }
            }
        }
    }

    /// For each fault that was reverted and each probe it was seen by (a detection), the time from the revert to the
    /// probe's first result back within its baseline (good, and no slower than `recoveredBound` of its p95).
    public static func recovery(probes samples: [ProbeSample], faults: [FaultRecord], impact: [ImpactRow], detection: [Detection]) -> [Recovery] {
        let baseline = impact.filter { $0.phase == .baseline }
        return windows(faults).filter(\.reverted).flatMap { window in
            detection.filter { $0.fault == window.name }.map { seen in
                let bound = baseline.first { $0.probe == seen.probe }?.p95.map(recoveredBound) ?? .infinity
                let back = samples.first { $0.probe == seen.probe && $0.at >= window.to && $0.good && $0.latency <= bound }
                return Recovery(fault: window.name, probe: seen.probe, seconds: back.map { $0.at - window.to })
            }
        }
    }

    /// The latency a probe is back within its baseline at: the baseline's p95 and 20% more, at least 5 ms more (a
    /// p95 of a few fast results is no bound a healthy service keeps to the tenth of a millisecond).
    static func recoveredBound(_ p95: Double) -> Double { p95 + max(p95 * 0.2, 0.005) }

    struct Window {
        var name: String
        var from: Double
        var to: Double
        var reverted: Bool
    }

    /// The injected faults' windows; one still in place at the end lasts to the run's last result.
    static func windows(_ faults: [FaultRecord]) -> [Window] {
        faults.compactMap { fault in
            fault.injectedAt.map { Window(name: fault.name, from: $0, to: fault.revertedAt ?? .infinity, reverted: fault.revertedAt != nil) }
        }
    }

    static func row(_ probe: String, _ phase: ImpactRow.Phase, _ fault: String?, _ from: Double?, _ to: Double?, _ samples: [ProbeSample]) -> ImpactRow {
        let latencies = samples.map(\.latency).sorted()
        func percentile(_ p: Double) -> Double? {
            guard !latencies.isEmpty else { return nil }
            // Nearest rank: the smallest value with at least p of the results at or below it.
            return latencies[max(0, Int((p * Double(latencies.count)).rounded(.up)) - 1)]
        }
        let bad = samples.filter { !$0.good }.count
        return ImpactRow(probe: probe, phase: phase, fault: fault, from: from, to: to?.isFinite == true ? to : nil, count: samples.count,
                         errorRate: samples.isEmpty ? 0 : Double(bad) / Double(samples.count),
                         p50: percentile(0.5), p95: percentile(0.95), p99: percentile(0.99))
    }
}
