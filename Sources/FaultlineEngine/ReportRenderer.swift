import FaultlineCore
import Foundation

/// The Markdown and the self-contained HTML views of a run report.
public enum ReportRenderer {
    static func seconds(_ value: Double?) -> String { value.map { String(format: "+%.1fs", $0) } ?? "—" }

    /// "12 packets: 12 packets (720 bytes) dropped by iptables"; "nothing: ..." for a fault that acted on nothing.
    static func actedOn(_ fault: RunReport.FaultRecord) -> String {
        guard let evidence = fault.evidence else { return fault.injectedAt == nil ? "—" : "not read" }
        return (evidence.hits > 0 ? evidence.amount : "nothing") + ": " + evidence.detail
    }

    /// "met: 9 of 198 results bad, 4.5% of the run, 4.5× the 1% budget (objective 99% good)"; no "0 of 0".
    static func sloWords(_ slo: RunReport.SLOVerdict) -> String {
        guard slo.total > 0 else { return "not judged: no probe result during the method" }
        let bad = slo.total - slo.good
        let share = Double(bad) / Double(slo.total)
        let budget = (100 - slo.objective) / 100
        var text = "\(slo.met ? "met" : "missed"): \(bad) of \(slo.total) results bad, \(percent(share)) of the run"
        if budget > 0 { text += ", \(String(format: share / budget < 10 ? "%.1f" : "%.0f", share / budget))× the \(TimeSpan.trim(100 - slo.objective))% budget" }
        return text + " (objective \(TimeSpan.trim(slo.objective))% good)"
    }

    /// "back 3.2 s after the last revert (recovery window 30s)", or that it was not; nil without a window.
    static func recoveryWords(_ report: RunReport) -> String? {
        guard let window = report.recoveryWindow else { return nil }
        let limit = TimeSpan(microseconds: Int64((window * 1_000_000).rounded()))
        if let took = report.recoveredAfter { return "back \(String(format: "%.1f", took)) s after the last revert (recovery window \(limit))" }
        return report.steadyStateAfter == false ? "not back within the recovery window of \(limit)" : "not watched (the run was interrupted)"
    }

    static func percent(_ fraction: Double) -> String {
        let value = fraction * 100
        return (value == value.rounded() ? String(Int(value)) : String(format: value < 10 ? "%.1f" : "%.0f", value)) + "%"
    }

    static func milliseconds(_ seconds: Double?) -> String {
        guard let seconds else { return "—" }
        return seconds < 0.01 ? String(format: "%.1f ms", seconds * 1000) : "\(Int((seconds * 1000).rounded())) ms"
    }

    /// "baseline (to +2.0s)", "fault a (+2.0s to +4.0s)", "between (+4.0s to +6.0s)", "after (from +8.0s)".
    static func phaseText(_ row: RunReport.ImpactRow) -> String {
        switch row.phase {
        case .baseline: "baseline" + (row.to.map { " (to \(seconds($0)))" } ?? "")
        case .fault: "fault \(row.fault ?? "")" + (row.from.map { " (\(seconds($0)) to \(row.to.map(seconds) ?? "the end"))" } ?? "")
        case .between: "between" + (row.from.map { " (\(seconds($0)) to \(seconds(row.to)))" } ?? "")
        case .after: "after" + (row.from.map { " (from \(seconds($0)))" } ?? "")
        }
    }

    /// For each fault: which probes saw it and how soon, and how soon they recovered after its revert.
    static func detectionLines(_ report: RunReport) -> [String] {
        (report.detection ?? []).map { seen in
            var line = "fault \(seen.fault): probe \(seen.probe) saw it \(String(format: "%.1f", seen.seconds)) s after the inject (\(seconds(seen.at)))"
            if let back = report.recovery?.first(where: { $0.fault == seen.fault && $0.probe == seen.probe }) {
                line += back.seconds.map { "; back within its baseline \(String(format: "%.1f", $0)) s after the revert" } ?? "; not back within its baseline by the end of the run"
            }
            return line
        }
    }

    static func impactMarkdown(_ report: RunReport) -> String {
        guard let rows = report.impact, !rows.isEmpty else { return "" }
        var out = "\n## Impact\n\n| probe | phase | results | bad | p50 | p95 | p99 |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        for row in rows {
            out += "| \(markdownCell(row.probe)) | \(markdownCell(phaseText(row))) | \(row.count) | \(row.count == 0 ? "—" : percent(row.errorRate)) | \(milliseconds(row.p50)) | \(milliseconds(row.p95)) | \(milliseconds(row.p99)) |\n"
        }
        let lines = detectionLines(report)
        out += lines.isEmpty ? "\nNo probe saw a fault (no bad result while one was in place).\n" : "\n" + lines.map { "- \(markdownText($0))\n" }.joined()
        return out
    }

    static func impactHTML(_ report: RunReport) -> String {
        guard let rows = report.impact, !rows.isEmpty else { return "" }
        let cells = rows.map { row in
            "<tr><td>\(escape(row.probe))</td><td>\(escape(phaseText(row)))</td><td>\(row.count)</td><td>\(row.count == 0 ? "—" : percent(row.errorRate))</td><td>\(milliseconds(row.p50))</td><td>\(milliseconds(row.p95))</td><td>\(milliseconds(row.p99))</td></tr>"
        }.joined()
        let lines = detectionLines(report)
        let seen = lines.isEmpty ? "<p>No probe saw a fault (no bad result while one was in place).</p>" : "<ul>" + lines.map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
        return "<h2>Impact</h2><table id=\"impact\"><tr><th>probe</th><th>phase</th><th>results</th><th>bad</th><th>p50</th><th>p95</th><th>p99</th></tr>\(cells)</table>\(seen)"
    }

    public static func markdown(_ report: RunReport) -> String {
        var out = "# Game day: \(report.scenario)\n\n"
        if let description = report.description { out += "\(markdownText(description))\n\n" }
        out += """
            | | |
            | --- | --- |
            | run | `\(report.runID)` on \(markdownCell(report.host)) by \(markdownCell(report.user)) |\(report.traceID.map { "\n| trace | `\($0)` |" } ?? "")
            | started | \(ISO8601DateFormatter().string(from: report.startedAt)) |
            | ended | \(ISO8601DateFormatter().string(from: report.endedAt)) |
            | verdict | **\(report.verdict ?? report.state.rawValue)** (exit \(report.exitCode)) |
            | steady state before / after | \(report.steadyStateBefore ? "held" : "did not hold") / \(report.steadyStateAfter.map { $0 ? "held" : "did not hold" } ?? "not checked") |

            """
        if let slo = report.slo { out += "| SLO | \(sloWords(slo)) |\n" }
        if let recovery = recoveryWords(report) { out += "| recovery | \(recovery) |\n" }
        // Abort reasons, errors and probe details carry what the service or a command answered: inert text too.
        if let abort = report.abortReason {
            out += report.abortedAt == nil ? "| why | \(markdownCell(abort)) |\n" : "| abort | \(markdownCell(abort)) at \(seconds(report.abortedAt)) |\n"
        }
        if let runbook = report.runbook { out += "| runbook | \(markdownRunbook(runbook)) |\n" }
        out += impactMarkdown(report)
        out += "\n## Faults\n\n| fault | type | target | injected | reverted | state | acted on |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        for fault in report.faults {
            out += "| \(markdownCell(fault.name)) | \(fault.type.rawValue) | \(markdownCell(fault.target)) | \(seconds(fault.injectedAt)) | \(seconds(fault.revertedAt)) | \(markdownCell(fault.state.rawValue + (fault.error.map { ": \($0)" } ?? "") + (fault.note.map { " (\($0))" } ?? ""))) | \(markdownCell(actedOn(fault))) |\n"
        }
        for fault in report.faults {
            out += "\n### \(markdownCell(fault.name))\n\n\(markdownText(fault.summary))\n\nInject:\n\n```\n\(fault.injectCommands.joined(separator: "\n"))\n```\n\nRevert:\n\n```\n\(fault.revertCommands.joined(separator: "\n"))\n```\n"
        }
        out += "\n## Probes\n\n| probe | results | bad | median latency |\n| --- | --- | --- | --- |\n"
        for name in probeNames(report) {
            let samples = report.probes.filter { $0.probe == name }
            let latencies = samples.map(\.latency).sorted()
            out += "| \(markdownCell(name)) | \(samples.count) | \(samples.filter { !$0.good }.count) | \(String(format: "%.1f ms", (latencies.isEmpty ? 0 : latencies[latencies.count / 2]) * 1000)) |\n"
        }
        let traced = tracedFailures(report)
        if !traced.isEmpty {
            out += "\n## Failing probe requests and their traces\n\nSearch the tracing backend for the trace ID; the request carried it to the service in its `traceparent` header.\n\n| probe | phase | at | result | trace ID |\n| --- | --- | --- | --- | --- |\n"
            for sample in traced.prefix(tracedLimit) {
                out += "| \(markdownCell(sample.probe)) | \(sample.phase.rawValue) | \(seconds(sample.at)) | \(markdownCell(sample.detail))\(sample.ok ? " (slow: \(Int((sample.latency * 1000).rounded()))ms)" : "") | `\(sample.traceID ?? "")` |\n"
            }
            if traced.count > tracedLimit { out += "\n\(traced.count - tracedLimit) more in report.json.\n" }
        }
        out += "\n## Review (blameless)\n" + reviewMarkdown(report, level: "###")
        return out
    }

    /// How many failing requests the Markdown and HTML views list (report.json has them all).
    static let tracedLimit = 20

    /// The bad probe results that have a trace.
    static func tracedFailures(_ report: RunReport) -> [RunReport.ProbeSample] {
        report.probes.filter { $0.traceID != nil }
    }

    static func probeNames(_ report: RunReport) -> [String] {
        report.probes.map(\.probe).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    }

    /// `text` for HTML element content or a quoted attribute.
    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A timeline chart as inline SVG: probe latency over time per probe (red for bad results),
    /// fault windows shaded, the abort marked.
    public static func svg(_ report: RunReport, width: Double = 960) -> String {
        let names = probeNames(report)
        let rowHeight = 90.0, top = 30.0, left = 130.0, right = 20.0
        let height = top + Double(max(names.count, 1)) * rowHeight + 30
        let times = report.probes.map(\.at) + report.faults.compactMap(\.revertedAt) + [report.abortedAt ?? 0, 1]
        let start = min(0, times.min() ?? 0), end = max(times.max() ?? 1, start + 1)
        func x(_ t: Double) -> Double { left + (t - start) / (end - start) * (width - left - right) }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(Int(width))\" height=\"\(Int(height))\" fill=\"#fff\"/>"
        for (index, fault) in report.faults.enumerated() {
            guard let from = fault.injectedAt else { continue }
            let to = fault.revertedAt ?? end
            let hue = [210, 30, 280, 120, 0][index % 5]
            svg += "<rect class=\"fault\" x=\"\(x(from))\" y=\"\(top - 18)\" width=\"\(max(1, x(to) - x(from)))\" height=\"\(height - top - 12)\" fill=\"hsl(\(hue),70%,60%)\" fill-opacity=\"0.18\"><title>\(escape(fault.name)): \(escape(fault.summary))</title></rect>"
            svg += "<text x=\"\(x(from) + 3)\" y=\"\(top - 6 + Double(index % 2) * 11)\" fill=\"hsl(\(hue),60%,35%)\">\(escape(fault.name))</text>"
        }
        for (row, name) in names.enumerated() {
            let y0 = top + Double(row) * rowHeight
            let samples = report.probes.filter { $0.probe == name }
            let maxLatency = max(samples.map(\.latency).max() ?? 0.001, 0.001)
            svg += "<text x=\"8\" y=\"\(y0 + rowHeight / 2)\">\(escape(name))</text>"
            svg += "<text x=\"8\" y=\"\(y0 + rowHeight / 2 + 13)\" fill=\"#777\">max \(String(format: "%.0f", maxLatency * 1000)) ms</text>"
            svg += "<line x1=\"\(left)\" y1=\"\(y0 + rowHeight - 10)\" x2=\"\(width - right)\" y2=\"\(y0 + rowHeight - 10)\" stroke=\"#ccc\"/>"
            for sample in samples {
                let y = y0 + rowHeight - 10 - (sample.latency / maxLatency) * (rowHeight - 25)
                svg += "<circle class=\"\(sample.good ? "good" : "bad")\" cx=\"\(x(sample.at))\" cy=\"\(y)\" r=\"\(sample.good ? 2 : 3)\" fill=\"\(sample.good ? "#2a7" : "#d22")\"><title>\(escape(sample.detail)) at \(String(format: "%.2f", sample.at))s</title></circle>"
            }
        }
        if let abortedAt = report.abortedAt {
            svg += "<line id=\"abort\" x1=\"\(x(abortedAt))\" y1=\"\(top - 20)\" x2=\"\(x(abortedAt))\" y2=\"\(height - 20)\" stroke=\"#d22\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/>"
            svg += "<text x=\"\(x(abortedAt) + 4)\" y=\"\(height - 22)\" fill=\"#d22\">abort</text>"
        }
        svg += "<text x=\"\(left)\" y=\"\(height - 6)\" fill=\"#555\">\(String(format: "%+.0fs", start))</text>"
        svg += "<text x=\"\(width - right - 40)\" y=\"\(height - 6)\" fill=\"#555\">\(String(format: "%+.0fs", end))</text>"
        return svg + "</svg>"
    }

    public static func html(_ report: RunReport) -> String {
        let rows = report.faults.map { fault in
            "<tr><td>\(escape(fault.name))</td><td>\(fault.type.rawValue)</td><td>\(escape(fault.target))</td><td>\(seconds(fault.injectedAt))</td><td>\(seconds(fault.revertedAt))</td><td>\(escape(fault.state.rawValue + (fault.note.map { " (\($0))" } ?? "")))</td><td>\(escape(actedOn(fault)))</td></tr>"
        }.joined()
        let slo = (report.slo.map { "<p>SLO \(escape(sloWords($0))).</p>" } ?? "") + (recoveryWords(report).map { "<p>Recovery: \(escape($0)).</p>" } ?? "")
        let abort = report.abortReason.map { reason in
            report.abortedAt.map { "<p class=\"abort\">Aborted at \(seconds($0)): \(escape(reason))</p>" } ?? "<p class=\"abort\">Why: \(escape(reason))</p>"
        } ?? ""
        let runbook = report.runbook.map { "<p>Runbook: \(htmlRunbook($0))</p>" } ?? ""
        let description = report.description.map { "<p class=\"description\">\(escape($0))</p>" } ?? ""
        let traced = tracedFailures(report)
        let traces = traced.isEmpty ? "" : "<h2>Failing probe requests and their traces</h2><table id=\"traces\"><tr><th>probe</th><th>phase</th><th>at</th><th>result</th><th>trace ID</th></tr>"
            + traced.prefix(tracedLimit).map { "<tr><td>\(escape($0.probe))</td><td>\($0.phase.rawValue)</td><td>\(seconds($0.at))</td><td>\(escape($0.detail))</td><td><code>\($0.traceID ?? "")</code></td></tr>" }.joined()
            + "</table>" + (traced.count > tracedLimit ? "<p>\(traced.count - tracedLimit) more in report.json.</p>" : "")
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Faultline: \(escape(report.scenario))</title>
            <style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}.abort{color:#b00}</style>
            </head><body>
            <h1>\(escape(report.scenario)) — \(escape(report.verdict ?? report.state.rawValue)) (exit \(report.exitCode))</h1>
            <p>Run <code>\(report.runID)</code>\(report.traceID.map { " (trace <code>\($0)</code>)" } ?? "") on \(escape(report.host)) by \(escape(report.user)), \(ISO8601DateFormatter().string(from: report.startedAt)) to \(ISO8601DateFormatter().string(from: report.endedAt)).</p>
            \(description)\(abort)\(slo)\(runbook)
            \(svg(report))
            \(impactHTML(report))
            <h2>Faults</h2>
            <table><tr><th>fault</th><th>type</th><th>target</th><th>injected</th><th>reverted</th><th>state</th><th>acted on</th></tr>\(rows)</table>
            \(traces)
            \(reviewHTML(report))
            </body></html>

            """
    }
}
