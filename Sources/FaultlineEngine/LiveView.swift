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
    /// Red for failing probes and faults that acted on nothing, green for passing ones.
    let colour: Bool

    public init(width: Int = 100, colour: Bool = false, write: @escaping @Sendable (String) -> Void) {
        self.width = width
        self.colour = colour
        self.write = write
    }

    /// Whether a terminal should get colour: not when NO_COLOR is set (https://no-color.org) or TERM is dumb.
    public static var terminalHasColour: Bool {
        let environment = ProcessInfo.processInfo.environment
        return environment["NO_COLOR"].map(\.isEmpty) ?? true && environment["TERM"].map { $0 != "dumb" && !$0.isEmpty } ?? false
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

    /// Up `lines` lines and clear to the end of the screen, from the first column: the terminal's echo of ^C (or
    /// anything typed) moves the cursor right, and erasing from there would leave the frame's first characters.
    static func erase(_ lines: Int) -> String {
        lines == 0 ? "" : "\r\u{1B}[\(lines)A\u{1B}[J"
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
        // The method ends with its last fault (or maxDuration): that is the real end, maxDuration only the bound.
        let end = min(source.plan.faults.map(\.end.seconds).max() ?? source.plan.maxDuration.seconds, source.plan.maxDuration.seconds)
        var lines = ["── run \(source.plan.runID) · \(source.plan.scenario) · elapsed \(Self.clock(seconds)) · ends in \(Self.clock(end - seconds)) (at most \(Self.clock(source.plan.maxDuration.seconds - seconds))) ──"]
        for fault in source.plan.faults {
            let entry = source.progress[fault.name]
            let state = entry.state == .notInjected ? (seconds < fault.start.seconds ? "pending" : "starting") : entry.state.rawValue
            lines.append("  \(fault.name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(fault.type.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(state.padding(toLength: 14, withPad: " ", startingAt: 0)) +\(fault.start) → +\(fault.end)"
                + (entry.evidence.map { $0.hits > 0 ? "  acted on \($0.amount)" : "  acted on nothing" } ?? ""))
        }
        let samples = source.ledger.samples
        var names: [String] = []
        for sample in samples where !names.contains(sample.probe) { names.append(sample.probe) }
        let steadyState = source.ledger.steadyState
        for name in names {
            let own = samples.filter { $0.probe == name }
            let recent = own.suffix(24)
            guard let last = recent.last else { continue }
            let status = last.good ? "ok  " : "FAIL"
            // The share of bad results in the burn-rate window (else the last 24), and the burn against its limit:
            // the latest result alone hides a service failing one request in twenty.
            var share = ""
            if let burn = steadyState?.abortWhen?.burnRate, let objective = steadyState?.slo?.objective {
                let window = own.filter { $0.phase == .method && $0.at >= last.at - burn.window.seconds }
                let bad = Double(window.filter { !$0.good }.count) / Double(max(window.count, 1))
                share = "bad \(ReportRenderer.percent(bad)) in \(burn.window), burn \(String(format: "%.1f", bad / max(1 - objective.fraction, 1e-9)))× (aborts over \(TimeSpan.trim(burn.factor))×)"
            } else {
                share = "bad \(ReportRenderer.percent(Double(recent.filter { !$0.good }.count) / Double(recent.count))) of the last \(recent.count)"
            }
            lines.append("  \(name.padding(toLength: 22, withPad: " ", startingAt: 0)) \(status) \(String(format: "%7.1f ms", last.latency * 1000)) \(Self.sparkline(recent.map(\.latency)))  \(share)\(last.good ? "" : "  " + String(last.detail.prefix(40)))")
        }
        if let slo = source.ledger.verdict(), slo.total > 0 {
            lines.append("  SLO \(TimeSpan.trim(slo.objective))%: \(String(format: "%.1f", Double(slo.good) / Double(slo.total) * 100))% good, \(Int((max(0, 1 - slo.budgetUsed)) * 100))% of the error budget left")
        }
        return lines.map { line in
            let cut = String(line.prefix(width))
            guard colour else { return cut }
            return cut.replacingOccurrences(of: " FAIL ", with: " \u{1B}[31mFAIL\u{1B}[0m ").replacingOccurrences(of: " ok   ", with: " \u{1B}[32mok\u{1B}[0m   ")
                .replacingOccurrences(of: "acted on nothing", with: "\u{1B}[31macted on nothing\u{1B}[0m")
        }
    }
}
