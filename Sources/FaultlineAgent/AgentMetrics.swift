import FaultlineCore
import Prometheus
import Synchronization

/// The agent's Prometheus metrics (SPEC §4), kept in a swift-prometheus registry of this agent's own and written in
/// the text exposition format by it.
public final class AgentMetrics: Sendable {
    static let buckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// A metric's name and HELP text; the names are a fixed contract (SPEC §4).
    struct Family: Sendable {
        let name: String
        let help: String

        var descriptor: MetricNameDescriptor { MetricNameDescriptor(metricName: name, unitName: "", helpText: help) }
    }

    static let faultsActive = Family(name: "faultline_faults_active", help: "Faults injected and not yet reverted, by fault type.")
    static let injections = Family(name: "faultline_fault_injections_total", help: "Fault injections, by fault type and result.")
    static let reverts = Family(name: "faultline_reverts_total", help: "Fault reverts, by fault type and result.")
    static let revertDuration = Family(name: "faultline_revert_duration_seconds", help: "How long reverting one fault took.")
    static let probeResults = Family(name: "faultline_probe_results_total",
                                     help: "Steady-state probe results, by probe and result (ok, failed).")
    static let probeLatency = Family(name: "faultline_probe_latency_seconds", help: "Steady-state probe latency, by probe.")
    static let runs = Family(name: "faultline_runs_total", help: "Runs that ended, by result.")
    static let aborts = Family(name: "faultline_aborts_total", help: "Runs aborted, by reason.")
    static let hits = Family(name: "faultline_fault_hits_total",
                             help: "What faults acted on, read before each revert, by fault type and unit (packets, processes, bytes, cpu-seconds).")
    static let idle = Family(name: "faultline_faults_without_effect_total",
                             help: "Faults that acted on nothing while in place (their runs end inconclusive), by fault type.")
    static let stateBytes = Family(name: "faultline_state_bytes",
                                   help: "Bytes the agent's state directory takes on disk (journal, run folders, reserve), measured at most every 10 s.")

    /// Where this agent's metrics live. `faultline agent` also points swift-metrics at it, so that `/metrics` shows
    /// the HTTP server's request metrics too.
    public let registry = PrometheusCollectorRegistry()
    /// Faults active by type: the gauge is set from this count under its lock, so it never goes below 0.
    private let active = Mutex<[String: Int]>([:])

    public init() {
        // Every fault type, run result and abort reason is there from the start, at 0, as Prometheus's rate() and
        // the dashboard expect.
        for type in FaultType.allCases.map(\.rawValue) {
            _ = registry.makeGauge(descriptor: Self.faultsActive.descriptor, labels: [("type", type)])
            for ok in [true, false] {
                _ = registry.makeCounter(descriptor: Self.injections.descriptor, labels: Self.outcome(type, ok: ok))
                _ = registry.makeCounter(descriptor: Self.reverts.descriptor, labels: Self.outcome(type, ok: ok))
            }
            _ = registry.makeCounter(descriptor: Self.idle.descriptor, labels: [("type", type)])
        }
        _ = registry.makeValueHistogram(descriptor: Self.revertDuration.descriptor, buckets: Self.buckets)
        for result in RunState.results { _ = registry.makeCounter(descriptor: Self.runs.descriptor, labels: [("result", result.rawValue)]) }
        for cause in AbortCause.allCases { _ = registry.makeCounter(descriptor: Self.aborts.descriptor, labels: [("reason", cause.rawValue)]) }
    }

    func injected(_ type: String, ok: Bool, becameActive: Bool) {
        registry.makeCounter(descriptor: Self.injections.descriptor, labels: Self.outcome(type, ok: ok)).increment()
        if becameActive { changeActive(type, by: 1) }
    }

    func reverted(_ type: String, ok: Bool, seconds: Double?, wasActive: Bool) {
        registry.makeCounter(descriptor: Self.reverts.descriptor, labels: Self.outcome(type, ok: ok)).increment()
        if let seconds { registry.makeValueHistogram(descriptor: Self.revertDuration.descriptor, buckets: Self.buckets).record(seconds) }
        if wasActive { changeActive(type, by: -1) }
    }

    func probed(_ probe: String, ok: Bool, latency: Double) {
        registry.makeCounter(descriptor: Self.probeResults.descriptor, labels: [("probe", probe), ("result", ok ? "ok" : "failed")]).increment()
        registry.makeValueHistogram(descriptor: Self.probeLatency.descriptor, labels: [("probe", probe)], buckets: Self.buckets).record(latency)
    }

    func evidence(_ type: String, _ evidence: FaultEvidence) {
        registry.makeCounter(descriptor: Self.hits.descriptor, labels: [("type", type), ("unit", evidence.unit)]).increment(by: evidence.hits)
        if evidence.hits == 0 { registry.makeCounter(descriptor: Self.idle.descriptor, labels: [("type", type)]).increment() }
    }

    func ended(_ result: RunState) { registry.makeCounter(descriptor: Self.runs.descriptor, labels: [("result", result.rawValue)]).increment() }

    func aborted(_ cause: AbortCause) { registry.makeCounter(descriptor: Self.aborts.descriptor, labels: [("reason", cause.rawValue)]).increment() }

    func stateUsage(_ bytes: Int64) { registry.makeGauge(descriptor: Self.stateBytes.descriptor).set(to: Double(bytes)) }

    /// The text exposition format, version 0.0.4.
    public func exposition() -> String { registry.emitToString() }

    private func changeActive(_ type: String, by change: Int) {
        let gauge = registry.makeGauge(descriptor: Self.faultsActive.descriptor, labels: [("type", type)])
        active.withLock { active in
            let count = max(0, active[type, default: 0] + change)
            active[type] = count
            gauge.set(to: Double(count))
        }
    }

    private static func outcome(_ type: String, ok: Bool) -> [(String, String)] { [("type", type), ("result", ok ? "success" : "failure")] }
}
