import FaultlineCore
import Foundation

/// The chart of report.html as self-contained SVG: a row per probe with its own latency axis, seconds after the
/// method started along the bottom, each fault's window shaded and named, the abort and the recovery marked, a legend.
/// Every label is placed so that it stays inside the picture and clear of the others.
struct ReportChart {
    /// A label on one line of a band: its text, where it starts and ends, and how it is anchored.
    struct PlacedLabel {
        var text: String
        var x: Double
        var anchor: String
        var from: Double
        var to: Double
    }

    /// A vertical line across the rows with a label above them: the abort, the steady state back, the recovery window's end.
    struct Marker {
        var id: String
        var at: Double
        var label: String
        var colour: String
        var dash: String
        var title: String
    }

    let report: RunReport
    let width: Double
    let names: [String]
    let start: Double
    let end: Double

    static let fontSize = 11.0
    static let left = 74.0
    static let right = 28.0
    static let legendHeight = 28.0
    static let laneHeight = 17.0
    static let rowTitle = 26.0
    static let plotHeight = 110.0
    static let rowGap = 14.0
    static let axisHeight = 40.0
    static let hues = [210, 30, 280, 120, 330, 180]

    init(_ report: RunReport, width: Double) {
        self.report = report
        self.width = max(width, 360)
        names = ReportRenderer.probeNames(report)
        let markerTimes = Self.markers(report).map(\.at)
        let times = report.probes.map(\.at) + report.faults.compactMap(\.injectedAt) + report.faults.compactMap(\.revertedAt) + markerTimes
        start = min(0, times.min() ?? 0)
        end = max(times.max() ?? 1, start + 1)
    }

    var plotLeft: Double { Self.left }
    var plotRight: Double { width - Self.right }

    func x(_ t: Double) -> Double { plotLeft + (min(max(t, start), end) - start) / (end - start) * (plotRight - plotLeft) }

    /// The abort, the steady state back after the last revert, and the end of the recovery window, where the run has them.
    static func markers(_ report: RunReport) -> [Marker] {
        var markers: [Marker] = []
        if let abortedAt = report.abortedAt {
            markers.append(Marker(id: "abort", at: abortedAt, label: "abort \(ReportRenderer.seconds(abortedAt))", colour: "#c62828", dash: "5 3",
                                  title: "abort at \(ReportRenderer.seconds(abortedAt))" + (report.abortReason.map { ": \($0)" } ?? "")))
        }
        if let lastRevert = report.faults.compactMap(\.revertedAt).max() {
            // The window's end only where the probes were not back by then: after they are, nothing is watched.
            if let back = report.recoveredAfter {
                markers.append(Marker(id: "recovered", at: lastRevert + back, label: "steady state back \(ReportRenderer.seconds(lastRevert + back))",
                                      colour: "#2e7d32", dash: "2 2", title: "the probes passed again \(String(format: "%.1f", back)) s after the last revert"))
            } else if let window = report.recoveryWindow, report.steadyStateAfter == false {
                markers.append(Marker(id: "recovery-window", at: lastRevert + window, label: "recovery window ends \(ReportRenderer.seconds(lastRevert + window))",
                                      colour: "#616161", dash: "6 4", title: "the recovery window: \(TimeSpan.trim(window)) s after the last revert"))
            }
        }
        return markers
    }

    /// How wide `text` is drawn, estimated on the generous side (so that an estimate that fits, fits): the advance
    /// widths of DejaVu Sans, the widest of the usual sans-serif fonts, rounded up, in em.
    static func textWidth(_ text: String, size: Double = fontSize, bold: Bool = false) -> Double {
        text.reduce(0.0) { sum, character in
            let em: Double = switch character {
            case " ", ".", ",", ":", ";", "'", "|", "!", "i", "l", "j", "·": 0.34
            case "(", ")", "[", "]", "-", "f", "t", "r", "/": 0.42
            case "m", "M", "W", "%", "@", "…": 1.0
            case "w", "+", "=", "<", ">", "~", "×": 0.84
            case "0"..."9": 0.64
            case "A"..."Z": 0.78
            default: 0.64
            }
            return sum + em
        } * size * (bold ? 1.12 : 1)
    }

    /// `text` cut to `limit` pixels with an ellipsis; empty when not even two characters fit.
    static func truncated(_ text: String, to limit: Double) -> String {
        guard textWidth(text) > limit else { return text }
        var cut = String(text.dropLast())
        while !cut.isEmpty, textWidth(cut + "…") > limit { cut.removeLast() }
        return cut.count < 2 ? "" : cut + "…"
    }

    /// A step of 1, 2, 2.5 or 5 times a power of ten that cuts `span` into about `count` parts.
    static func niceStep(_ span: Double, count: Double) -> Double {
        let raw = max(span, 1e-9) / max(count, 1)
        let magnitude = pow(10, floor(log10(raw)))
        let residual = raw / magnitude
        return magnitude * (residual <= 1 ? 1 : residual <= 2 ? 2 : residual <= 2.5 ? 2.5 : residual <= 5 ? 5 : 10)
    }

    /// The time ticks: multiples of a round number of seconds from the start to the end.
    var timeTicks: [Double] {
        let step = Self.niceStep(end - start, count: (plotRight - plotLeft) / 100)
        var ticks: [Double] = []
        var tick = (start / step).rounded(.up) * step
        while tick <= end + step * 1e-6 {
            ticks.append(abs(tick) < step * 1e-6 ? 0 : tick)
            tick += step
        }
        return ticks
    }

    /// "+0s", "+5s", "-2s", "+2.5s".
    static func timeLabel(_ seconds: Double) -> String { (seconds < 0 ? "-" : "+") + TimeSpan.trim(abs(seconds)) + "s" }

    /// "0 ms", "250 ms", "0.5 ms".
    static func latencyLabel(_ seconds: Double) -> String { TimeSpan.trim((seconds * 1000 * 100).rounded() / 100) + " ms" }

    /// The latency ticks of a probe's axis, from 0 to a round top at or above its slowest result.
    static func latencyTicks(_ slowest: Double) -> [Double] {
        let top = max(slowest, 0.001)
        let step = niceStep(top, count: 4)
        let count = Int((top / step - 1e-9).rounded(.up))
        return (0...max(count, 1)).map { Double($0) * step }
    }

    /// Places labels on lines (lanes), up to `lanes` of them, so that no label or window's bar overlaps another on its
    /// lane: each whole on the first of three lanes where it fits; else cut to its window's width (at least a few
    /// letters) on any lane; else left out (its window's tooltip still names it). A label that would leave the picture
    /// moves left.
    static func placeInLanes(_ wanted: [(text: String, x: Double, from: Double, to: Double)], lanes: Int, limit: Double) -> [(item: Int, lane: Int, label: PlacedLabel)] {
        var taken: [[ClosedRange<Double>]] = []
        var placed: [(item: Int, lane: Int, label: PlacedLabel)] = []
        let gap = 8.0
        for (index, item) in wanted.enumerated() {
            let cut = truncated(item.text, to: max(item.to - item.x, textWidth("abc…")))
            // Whole names staggered over a few lanes read well; more lanes take names cut to their windows.
            for (text, cap) in [(item.text, min(lanes, 3)), (cut, lanes)] where !text.isEmpty {
                let width = textWidth(text)
                let x = item.x + width > limit ? max(2, limit - width) : item.x
                let span = min(x, item.from)...max(x + width, item.to)
                let free = { (ranges: [ClosedRange<Double>]) in !ranges.contains { $0.overlaps(span.lowerBound - gap...span.upperBound + gap) } }
                guard let lane = taken.prefix(cap).firstIndex(where: free) ?? (taken.count < cap ? taken.count : nil) else { continue }
                if lane == taken.count { taken.append([]) }
                taken[lane].append(span)
                placed.append((index, lane, PlacedLabel(text: text, x: x, anchor: "start", from: x, to: x + width)))
                break
            }
        }
        return placed
    }

    /// Places marker labels beside their lines, right of the line or, where that would leave the picture, left of it;
    /// each on the first lane where it overlaps no other label and no other marker's line crosses it (a line runs down
    /// from its own label, through the lanes below).
    func placeMarkers(_ markers: [Marker]) -> [(lane: Int, label: PlacedLabel)] {
        var placed: [(lane: Int, label: PlacedLabel, at: Double)] = []
        var order: [Int] = []
        // From the right: the labels there are the ones that may have to go left of their lines, over the others'.
        for index in markers.indices.sorted(by: { markers[$0].at > markers[$1].at }) {
            let marker = markers[index]
            order.append(index)
            let at = x(marker.at), width = Self.textWidth(marker.label, bold: true)
            let fitsRight = at + 4 + width <= self.width - 4
            let sides = fitsRight ? [true, false] : [false]
            func label(_ right: Bool) -> PlacedLabel {
                let from = right ? at + 4 : max(2, at - 4 - width)
                return PlacedLabel(text: marker.label, x: right ? at + 4 : max(2, at - 4 - width) + width, anchor: right ? "start" : "end", from: from, to: from + width)
            }
            func free(_ candidate: PlacedLabel, lane: Int) -> Bool {
                placed.allSatisfy { other in
                    if other.lane == lane { return candidate.to + 8 < other.label.from || other.label.to + 8 < candidate.from }
                    // The higher label's line crosses the lower label.
                    let (upper, lower) = other.lane < lane ? (other.at, candidate) : (at, other.label)
                    return !(lower.from - 3...lower.to + 3).contains(upper)
                }
            }
            // A lane of its own below the others when no lane is free: crossed by a line, perhaps, but clear of text.
            let lanes = (placed.map(\.lane).max() ?? -1) + 1
            let choice = (0...lanes).lazy.compactMap { lane in sides.first { free(label($0), lane: lane) }.map { (lane, $0) } }.first
            placed.append(choice.map { ($0.0, label($0.1), at) } ?? (lanes, label(sides[0]), at))
        }
        return markers.indices.map { index in
            let found = placed[order.firstIndex(of: index)!]
            return (found.lane, found.label)
        }
    }

    /// A white outline under a label's letters, so that a line running behind it does not cross them out.
    static let halo = " stroke=\"#fff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\""

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }

    func render() -> String {
        let escape = ReportRenderer.escape
        let n = Self.number
        let markers = Self.markers(report)
        let markerLabels = placeMarkers(markers)
        let markerLanes = (markerLabels.map(\.lane).max() ?? -1) + 1

        // Fault windows, in the order they went in.
        let windows = report.faults.enumerated().compactMap { index, fault in
            fault.injectedAt.map { (index: index, fault: fault, from: $0, to: fault.revertedAt ?? end) }
        }.sorted { $0.from < $1.from }
        let faultLabels = Self.placeInLanes(windows.map { window in
            (text: Self.truncated(window.fault.name, to: 320), x: x(window.from) + 3, from: x(window.from), to: x(window.to))
        }, lanes: min(windows.count, 8), limit: width - 4)
        let faultLanes = (faultLabels.map(\.lane).max() ?? -1) + 1

        let markerTop = Self.legendHeight
        let laneTop = markerTop + Double(markerLanes) * Self.laneHeight
        let rowsTop = laneTop + Double(faultLanes) * Self.laneHeight + 4
        let rowHeight = Self.rowTitle + Self.plotHeight + Self.rowGap
        let rowsBottom = rowsTop + Double(max(names.count, 1)) * rowHeight - Self.rowGap
        let height = rowsBottom + Self.axisHeight

        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"\(Int(Self.fontSize))\" role=\"img\" aria-label=\"probe latency over the run, with fault windows\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fff\"/>"
        svg += legend(markers)

        // Fault windows: shaded across the rows, named on their lane above them.
        func windowTitle(_ fault: RunReport.FaultRecord, _ from: Double) -> String {
            "\(fault.name) (\(ReportRenderer.seconds(from)) to \(fault.revertedAt.map { ReportRenderer.seconds($0) } ?? "the end")): \(fault.summary)"
        }
        for window in windows {
            let hue = Self.hues[window.index % Self.hues.count]
            let title = windowTitle(window.fault, window.from)
            svg += "<rect class=\"fault\" x=\"\(n(x(window.from)))\" y=\"\(n(rowsTop))\" width=\"\(n(max(1.5, x(window.to) - x(window.from))))\" height=\"\(n(rowsBottom - rowsTop))\" fill=\"hsl(\(hue),70%,60%)\" fill-opacity=\"0.14\"><title>\(escape(title))</title></rect>"
        }
        var labels = ""
        for placed in faultLabels {
            let window = windows[placed.item]
            let hue = Self.hues[window.index % Self.hues.count]
            let baseline = laneTop + Double(placed.lane) * Self.laneHeight + 11
            let title = windowTitle(window.fault, window.from)
            svg += "<line x1=\"\(n(x(window.from)))\" y1=\"\(n(baseline + 3))\" x2=\"\(n(max(x(window.to), x(window.from) + 1.5)))\" y2=\"\(n(baseline + 3))\" stroke=\"hsl(\(hue),60%,45%)\" stroke-width=\"3\"/>"
            labels += "<text class=\"fault-label\" x=\"\(n(placed.label.x))\" y=\"\(n(baseline))\" fill=\"hsl(\(hue),60%,30%)\"\(Self.halo)>\(escape(placed.label.text))<title>\(escape(title))</title></text>"
        }

        let ticks = timeTicks
        for (row, name) in names.enumerated() {
            svg += probeRow(name, top: rowsTop + Double(row) * rowHeight, timeTicks: ticks)
        }
        if names.isEmpty {
            svg += "<text class=\"empty\" x=\"\(n((plotLeft + plotRight) / 2))\" y=\"\(n(rowsTop + rowHeight / 2))\" text-anchor=\"middle\" fill=\"#666\">no probe result</text>"
        }

        // The time axis under the last row.
        for tick in ticks {
            let label = Self.timeLabel(tick), half = Self.textWidth(label) / 2
            let at = x(tick)
            let anchor = at + half > width - 2 ? "end" : at - half < 2 ? "start" : "middle"
            svg += "<line x1=\"\(n(at))\" y1=\"\(n(rowsBottom))\" x2=\"\(n(at))\" y2=\"\(n(rowsBottom + 5))\" stroke=\"#555\"/>"
            svg += "<text class=\"tick-time\" x=\"\(n(anchor == "end" ? width - 2 : anchor == "start" ? max(2, at) : at))\" y=\"\(n(rowsBottom + 19))\" text-anchor=\"\(anchor)\" fill=\"#333\">\(label)</text>"
        }
        svg += "<text x=\"\(n((plotLeft + plotRight) / 2))\" y=\"\(n(rowsBottom + 35))\" text-anchor=\"middle\" fill=\"#555\">seconds after the method started</text>"

        // Markers over the rows, their labels above the fault lanes; the labels last, over any line.
        for (marker, placed) in zip(markers, markerLabels) {
            let at = x(marker.at)
            let baseline = markerTop + Double(placed.lane) * Self.laneHeight + 12
            svg += "<line id=\"\(marker.id)\" x1=\"\(n(at))\" y1=\"\(n(baseline + 3))\" x2=\"\(n(at))\" y2=\"\(n(rowsBottom))\" stroke=\"\(marker.colour)\" stroke-width=\"2\" stroke-dasharray=\"\(marker.dash)\"><title>\(escape(marker.title))</title></line>"
            labels += "<text class=\"marker-label\" id=\"\(marker.id)-label\" x=\"\(n(placed.label.x))\" y=\"\(n(baseline))\" text-anchor=\"\(placed.label.anchor)\" fill=\"\(marker.colour)\" font-weight=\"bold\"\(Self.halo)>\(escape(marker.label))<title>\(escape(marker.title))</title></text>"
        }
        return svg + labels + "</svg>"
    }

    /// The legend: what a dot, a red dot, a shaded band and each marker line mean.
    func legend(_ markers: [Marker]) -> String {
        let n = Self.number
        var x = plotLeft, out = ""
        let y = 16.0
        func text(_ label: String) {
            out += "<text class=\"legend\" x=\"\(n(x))\" y=\"\(n(y + 4))\" fill=\"#333\">\(label)</text>"
            x += Self.textWidth(label) + 16
        }
        out += "<circle cx=\"\(n(x + 4))\" cy=\"\(n(y))\" r=\"3\" fill=\"#2a7\"/>"
        x += 12
        text("good result")
        out += "<circle cx=\"\(n(x + 4))\" cy=\"\(n(y))\" r=\"3.5\" fill=\"#d22\"/>"
        x += 12
        text("bad result (failed, or slower than the SLO)")
        out += "<rect x=\"\(n(x))\" y=\"\(n(y - 6))\" width=\"16\" height=\"12\" fill=\"hsl(210,70%,60%)\" fill-opacity=\"0.3\"/>"
        x += 22
        text("fault window")
        for marker in markers {
            out += "<line x1=\"\(n(x + 7))\" y1=\"\(n(y - 7))\" x2=\"\(n(x + 7))\" y2=\"\(n(y + 7))\" stroke=\"\(marker.colour)\" stroke-width=\"2\" stroke-dasharray=\"\(marker.dash)\"/>"
            x += 16
            text(marker.id == "abort" ? "abort" : marker.id == "recovered" ? "steady state back" : "recovery window ends")
        }
        return "<g id=\"legend\">" + out + "</g>"
    }

    /// One probe: its name and numbers above, its latency axis on the left, its results over time.
    func probeRow(_ name: String, top: Double, timeTicks: [Double]) -> String {
        let escape = ReportRenderer.escape
        let n = Self.number
        let samples = report.probes.filter { $0.probe == name }.sorted { $0.at < $1.at }
        let latencies = samples.map(\.latency).sorted()
        let ticks = Self.latencyTicks(latencies.last ?? 0)
        let ceiling = ticks.last ?? 0.001
        let plotTop = top + Self.rowTitle, plotBottom = plotTop + Self.plotHeight
        func y(_ latency: Double) -> Double { plotBottom - min(max(latency, 0), ceiling) / ceiling * Self.plotHeight }

        let bad = samples.filter { !$0.good }.count
        func percentile(_ p: Double) -> Double? { latencies.isEmpty ? nil : latencies[max(0, Int((p * Double(latencies.count)).rounded(.up)) - 1)] }
        var numbers = "\(samples.count) results, \(bad) bad"
        if !latencies.isEmpty {
            numbers += " · p50 \(ReportRenderer.milliseconds(percentile(0.5))) · p95 \(ReportRenderer.milliseconds(percentile(0.95))) · max \(ReportRenderer.milliseconds(latencies.last))"
        }
        let shownName = Self.truncated(name, to: (plotRight - plotLeft) / 2)
        if Self.textWidth(shownName, bold: true) + 8 + Self.textWidth(numbers) > plotRight - plotLeft { numbers = "\(samples.count) results, \(bad) bad" }
        var out = "<g class=\"probe\">"
        out += "<text class=\"probe-title\" x=\"\(n(plotLeft))\" y=\"\(n(top + 15))\"><tspan font-weight=\"bold\" fill=\"#222\">\(escape(shownName))</tspan><tspan fill=\"#666\" dx=\"8\">\(escape(numbers))</tspan><title>\(escape(name))</title></text>"
        for tick in timeTicks {
            out += "<line class=\"grid\" x1=\"\(n(x(tick)))\" y1=\"\(n(plotTop))\" x2=\"\(n(x(tick)))\" y2=\"\(n(plotBottom))\" stroke=\"#eee\"/>"
        }
        for tick in ticks {
            out += "<line x1=\"\(n(plotLeft))\" y1=\"\(n(y(tick)))\" x2=\"\(n(plotRight))\" y2=\"\(n(y(tick)))\" stroke=\"\(tick == 0 ? "#999" : "#eee")\"/>"
            out += "<line x1=\"\(n(plotLeft - 5))\" y1=\"\(n(y(tick)))\" x2=\"\(n(plotLeft))\" y2=\"\(n(y(tick)))\" stroke=\"#555\"/>"
            out += "<text class=\"tick-latency\" x=\"\(n(plotLeft - 8))\" y=\"\(n(y(tick) + 4))\" text-anchor=\"end\" fill=\"#333\">\(Self.latencyLabel(tick))</text>"
        }
        out += "<line x1=\"\(n(plotLeft))\" y1=\"\(n(plotTop))\" x2=\"\(n(plotLeft))\" y2=\"\(n(plotBottom))\" stroke=\"#555\"/>"
        if samples.count > 1 {
            let points = samples.map { "\(n(x($0.at))),\(n(y($0.latency)))" }.joined(separator: " ")
            out += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"#8aa\" stroke-width=\"1\" stroke-opacity=\"0.7\"/>"
        }
        for sample in samples {
            let detail = "\(name) at \(String(format: "%+.2f", sample.at))s: \(sample.detail), \(ReportRenderer.milliseconds(sample.latency))"
            out += "<circle class=\"\(sample.good ? "good" : "bad")\" cx=\"\(n(x(sample.at)))\" cy=\"\(n(y(sample.latency)))\" r=\"\(sample.good ? 2.2 : 3.2)\" fill=\"\(sample.good ? "#2a7" : "#d22")\"><title>\(escape(detail))</title></circle>"
        }
        return out + "</g>"
    }
}
