import FaultlineCore
import Foundation
import Synchronization

/// The agent's Prometheus metrics (SPEC §4), kept in memory and written in the text exposition format.
public final class AgentMetrics: Sendable {
    static let buckets: [Double] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let runResults = ["succeeded", "deviated", "aborted", "failed", "inconclusive"]
    /// Why runs were aborted: the controller (one run), abort-all, an expired lease, agent shutdown,
    /// an abort condition of the scenario, a fault that could not be injected.
    static let abortReasons = ["controller", "abort-all", "lease", "shutdown", "condition", "inject-failed"]

    struct Histogram {
        var counts = [Int](repeating: 0, count: AgentMetrics.buckets.count)
        var sum = 0.0
        var count = 0

        mutating func observe(_ value: Double) {
            for (index, bound) in AgentMetrics.buckets.enumerated() where value <= bound { counts[index] += 1 }
            sum += value
            count += 1
        }
    }

    struct State {
        var active: [String: Int] = [:]
        var injections: [String: Int] = [:]  // "type|result"
        var reverts: [String: Int] = [:]
        var revertDuration = Histogram()
        var probeResults: [String: Int] = [:]  // "probe|result"
        var probeLatency: [String: Histogram] = [:]
        var runs: [String: Int] = [:]
        var aborts: [String: Int] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    func injected(_ type: String, ok: Bool, becameActive: Bool) {
        state.withLock { state in
            state.injections["\(type)|\(ok ? "success" : "failure")", default: 0] += 1
            if becameActive { state.active[type, default: 0] += 1 }
        }
    }

    func reverted(_ type: String, ok: Bool, seconds: Double?, wasActive: Bool) {
        state.withLock { state in
            state.reverts["\(type)|\(ok ? "success" : "failure")", default: 0] += 1
            if let seconds { state.revertDuration.observe(seconds) }
            if wasActive { state.active[type] = max(0, state.active[type, default: 0] - 1) }
        }
    }

    func probed(_ probe: String, ok: Bool, latency: Double) {
        state.withLock { state in
            state.probeResults["\(probe)|\(ok ? "ok" : "failed")", default: 0] += 1
            state.probeLatency[probe, default: Histogram()].observe(latency)
        }
    }

    func ended(_ result: String) { state.withLock { $0.runs[result, default: 0] += 1 } }

    func aborted(_ reason: String) { state.withLock { $0.aborts[reason, default: 0] += 1 } }

    /// The text exposition format, version 0.0.4.
    public func exposition() -> String {
        let state = state.withLock { $0 }
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ labels: [(String, String)], _ value: Double) {
            let text = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",") + "}"
            out += "\(name)\(text) \(Self.number(value))\n"
        }
        func histogram(_ name: String, _ labels: [(String, String)], _ histogram: Histogram) {
            for (index, bound) in Self.buckets.enumerated() {
                sample(name + "_bucket", labels + [("le", Self.number(bound))], Double(histogram.counts[index]))
            }
            sample(name + "_bucket", labels + [("le", "+Inf")], Double(histogram.count))
            sample(name + "_sum", labels, histogram.sum)
            sample(name + "_count", labels, Double(histogram.count))
        }
        let types = FaultType.allCases.map(\.rawValue)

        family("faultline_faults_active", "gauge", "Faults injected and not yet reverted, by fault type.")
        for type in types { sample("faultline_faults_active", [("type", type)], Double(state.active[type] ?? 0)) }
        family("faultline_fault_injections_total", "counter", "Fault injections, by fault type and result.")
        for type in types {
            for result in ["success", "failure"] {
                sample("faultline_fault_injections_total", [("type", type), ("result", result)], Double(state.injections["\(type)|\(result)"] ?? 0))
            }
        }
        family("faultline_reverts_total", "counter", "Fault reverts, by fault type and result.")
        for type in types {
            for result in ["success", "failure"] {
                sample("faultline_reverts_total", [("type", type), ("result", result)], Double(state.reverts["\(type)|\(result)"] ?? 0))
            }
        }
        family("faultline_revert_duration_seconds", "histogram", "How long reverting one fault took.")
        histogram("faultline_revert_duration_seconds", [], state.revertDuration)
        family("faultline_probe_results_total", "counter", "Steady-state probe results, by probe and result (ok, failed).")
        for key in state.probeResults.keys.sorted() {
            let parts = key.split(separator: "|", maxSplits: 1).map(String.init)
            sample("faultline_probe_results_total", [("probe", parts[0]), ("result", parts[1])], Double(state.probeResults[key] ?? 0))
        }
        family("faultline_probe_latency_seconds", "histogram", "Steady-state probe latency, by probe.")
        for probe in state.probeLatency.keys.sorted() {
            histogram("faultline_probe_latency_seconds", [("probe", probe)], state.probeLatency[probe]!)
        }
        family("faultline_runs_total", "counter", "Runs that ended, by result.")
        for result in Self.runResults { sample("faultline_runs_total", [("result", result)], Double(state.runs[result] ?? 0)) }
        family("faultline_aborts_total", "counter", "Runs aborted, by reason.")
        for reason in Self.abortReasons { sample("faultline_aborts_total", [("reason", reason)], Double(state.aborts[reason] ?? 0)) }
        return out
    }

    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
