import FaultlineCore
import Foundation
import Synchronization

/// The live view on a terminal: elapsed and remaining time, each fault's state, each probe's last result
/// with a sparkline of recent latency, and the SLO budget left — redrawn in place below the log lines.
public final class LiveView: Sendable {
    typealias Source = RunMonitor.Source

    private struct State {
        var source: Source?
        var drawnLines = 0
    }

    private let state = Mutex(State())
    private let write: @Sendable (String) -> Void
    let width: Int

    public init(width: Int = 100, write: @escaping @Sendable (String) -> Void) {
        self.width = width
        self.write = write
    }

    func attach(_ source: Source) {
        state.withLock { $0.source = source }
        redraw()
    }

    /// Removes the block for good (the run is over).
    func detach() {
        state.withLock { state in
            write(Self.erase(state.drawnLines))
            state.drawnLines = 0
            state.source = nil
        }
    }

    /// Prints a log line above the block, then redraws the block.
    public func print(_ line: String) {
        state.withLock { state in
            var out = Self.erase(state.drawnLines) + line
            let block = state.source.map(render) ?? []
            out += block.map { $0 + "\n" }.joined()
            state.drawnLines = block.count
            write(out)
        }
    }

    func redraw() {
        state.withLock { state in
            guard let source = state.source else { return }
            let block = render(source)
            write(Self.erase(state.drawnLines) + block.map { $0 + "\n" }.joined())
            state.drawnLines = block.count
        }
    }

    static func erase(_ lines: Int) -> String {
        lines == 0 ? "" : "\u{1B}[\(lines)A\u{1B}[J"
    }

    static let bars = Array("▁▂▃▄▅▆▇█")

    static func sparkline(_ values: [Double]) -> String {
        guard let high = values.max(), high > 0 else { return String(repeating: bars[0], count: values.count) }
        return String(values.map { bars[min(bars.count - 1, Int($0 / high * Double(bars.count - 1)))] })
    }

    static func clock(_ seconds: Double) -> String {
        let total = max(0, Int(seconds.rounded()))
        return total >= 60 ? "\(total / 60)m\(String(format: "%02d", total % 60))s" : "\(total)s"
    }

    func render(_ source: Source) -> [String] {
        let seconds = (ContinuousClock.now - source.methodStart).seconds
        var lines = ["── run \(source.plan.runID) · \(source.plan.scenario) · elapsed \(Self.clock(seconds)) · remaining \(Self.clock(source.plan.maxDuration.seconds - seconds)) ──"]
        for fault in source.plan.faults {
            let entry = source.progress[fault.name]
            let state = entry.state == .notInjected ? (seconds < fault.start.seconds ? "pending" : "starting") : entry.state.rawValue
            lines.append("  \(fault.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(fault.type.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(state.padding(toLength: 14, withPad: " ", startingAt: 0)) +\(fault.start) → +\(fault.end)"
                + (entry.evidence.map { $0.hits > 0 ? "  acted on \($0.amount)" : "  acted on nothing" } ?? ""))
        }
        let samples = source.ledger.samples
        var names: [String] = []
        for sample in samples where !names.contains(sample.probe) { names.append(sample.probe) }
        for name in names {
            let recent = samples.filter { $0.probe == name }.suffix(24)
            guard let last = recent.last else { continue }
            let status = last.good ? "ok  " : "FAIL"
            lines.append("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(status) \(String(format: "%7.1f ms", last.latency * 1000)) \(Self.sparkline(recent.map(\.latency)))  \(last.good ? "" : String(last.detail.prefix(40)))")
        }
        if let slo = source.ledger.verdict(), slo.total > 0 {
            lines.append("  SLO \(TimeSpan.trim(slo.objective))%: \(String(format: "%.1f", Double(slo.good) / Double(slo.total) * 100))% good, \(Int((max(0, 1 - slo.budgetUsed)) * 100))% of the error budget left")
        }
        return lines.map { String($0.prefix(width)) }
    }
}
