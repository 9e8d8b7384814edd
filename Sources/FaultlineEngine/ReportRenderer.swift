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

    /// The chart as inline SVG: each probe's latency over time on its own axis, fault windows shaded and named, the
    /// abort and the recovery marked, a legend. Self-contained: no script, no external resource.
    public static func svg(_ report: RunReport, width: Double = 1300) -> String {
        ReportChart(report, width: width).render()
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
            <style>body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}.abort{color:#b00}svg{max-width:100%;height:auto;display:block}</style>
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
