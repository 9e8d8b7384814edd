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

    /// One row of the header both views open with; its value rendered for each.
    struct Fact {
        enum Style { case text, code, verdict, runbook }
        var label: String
        var value: String
        var style: Style = .text
    }

    /// Who ran what, where and when, and how it ended: the header of report.md and report.html.
    static func facts(_ report: RunReport) -> [Fact] {
        let iso = ISO8601DateFormatter()
        var facts = [
            Fact(label: "run", value: report.runID, style: .code),
            Fact(label: "host", value: report.host),
            Fact(label: "user", value: report.user),
        ]
        if let trace = report.traceID { facts.append(Fact(label: "trace", value: trace, style: .code)) }
        facts += [
            Fact(label: "started", value: iso.string(from: report.startedAt)),
            Fact(label: "ended", value: iso.string(from: report.endedAt)),
            Fact(label: "verdict", value: report.verdict ?? report.state.rawValue, style: .verdict),
            Fact(label: "steady state before / after",
                 value: "\(report.steadyStateBefore ? "held" : "did not hold") / \(report.steadyStateAfter.map { $0 ? "held" : "did not hold" } ?? "not checked")"),
        ]
        if let slo = report.slo { facts.append(Fact(label: "SLO", value: sloWords(slo))) }
        if let recovery = recoveryWords(report) { facts.append(Fact(label: "recovery", value: recovery)) }
        if let abort = report.abortReason {
            facts.append(report.abortedAt.map { Fact(label: "abort", value: "\(abort) at \(seconds($0))") } ?? Fact(label: "why", value: abort))
        }
        if let runbook = report.runbook { facts.append(Fact(label: "runbook", value: runbook, style: .runbook)) }
        return facts
    }

    /// A fault's state with its error and note: "reverted", "failed: tc said ...", "reverted (the PID changed)".
    static func faultState(_ fault: RunReport.FaultRecord) -> String {
        fault.state.rawValue + (fault.error.map { ": \($0)" } ?? "") + (fault.note.map { " (\($0))" } ?? "")
    }

    /// A probe's numbers over the whole run: results, bad results, p50, p95 and the slowest.
    static func probeRows(_ report: RunReport) -> [[String]] {
        probeNames(report).map { name in
            let samples = report.probes.filter { $0.probe == name }
            let latencies = samples.map(\.latency).sorted()
            func percentile(_ p: Double) -> Double? { latencies.isEmpty ? nil : latencies[max(0, Int((p * Double(latencies.count)).rounded(.up)) - 1)] }
            let bad = samples.filter { !$0.good }.count
            return [name, "\(samples.count)", "\(bad)" + (samples.isEmpty ? "" : " (\(percent(Double(bad) / Double(samples.count))))"),
                    milliseconds(percentile(0.5)), milliseconds(percentile(0.95)), milliseconds(latencies.last)]
        }
    }

    static let probeColumns = ["probe", "results", "bad", "p50", "p95", "slowest"]

    public static func markdown(_ report: RunReport) -> String {
        var out = "# Game day: \(report.scenario)\n\n"
        if let description = report.description { out += "\(markdownText(description))\n\n" }
        out += "| | |\n| --- | --- |\n"
        // Abort reasons, errors and probe details carry what the service or a command answered: inert text too.
        for fact in facts(report) {
            let value = switch fact.style {
            case .text: markdownCell(fact.value)
            case .code: "`\(fact.value)`"
            case .verdict: "**\(fact.value)** (exit \(report.exitCode))"
            case .runbook: markdownRunbook(fact.value)
            }
            out += "| \(fact.label) | \(value) |\n"
        }
        out += timelineMarkdown(report)
        out += impactMarkdown(report)
        out += "\n## Faults\n\n| fault | type | target | injected | reverted | state | acted on |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        for fault in report.faults {
            out += "| \(markdownCell(fault.name)) | \(fault.type.rawValue) | \(markdownCell(fault.target)) | \(seconds(fault.injectedAt)) | \(seconds(fault.revertedAt)) | \(markdownCell(faultState(fault))) | \(markdownCell(actedOn(fault))) |\n"
        }
        for fault in report.faults {
            out += "\n### \(markdownCell(fault.name))\n\n\(markdownText(fault.summary))\n"
            for (title, commands) in [("Inject", fault.injectCommands), ("Revert", fault.revertCommands)] {
                out += commands.isEmpty ? "\n\(title): no command recorded.\n" : "\n\(title):\n\n```\n\(commands.joined(separator: "\n"))\n```\n"
            }
        }
        out += "\n## Probes\n\n| " + probeColumns.joined(separator: " | ") + " |\n|" + String(repeating: " --- |", count: probeColumns.count) + "\n"
        for row in probeRows(report) { out += "| " + row.map(markdownCell).joined(separator: " | ") + " |\n" }
        let traced = tracedFailures(report)
        if !traced.isEmpty {
            out += "\n## Failing probe requests and their traces\n\nSearch the tracing backend for the trace ID; the request carried it to the service in its `traceparent` header.\n\n| probe | phase | at | result | trace ID |\n| --- | --- | --- | --- | --- |\n"
            for sample in traced.prefix(tracedLimit) {
                out += "| \(markdownCell(sample.probe)) | \(sample.phase.rawValue) | \(seconds(sample.at)) | \(markdownCell(tracedResult(sample))) | `\(sample.traceID ?? "")` |\n"
            }
            if traced.count > tracedLimit { out += "\n\(traced.count - tracedLimit) more in report.json.\n" }
        }
        out += "\n## Review (blameless)\n" + reviewMarkdown(report, level: "###")
        return out
    }

    /// A traced result: what the probe got, and its latency when it was bad for being slow.
    static func tracedResult(_ sample: RunReport.ProbeSample) -> String {
        sample.detail + (sample.ok ? " (slow: \(Int((sample.latency * 1000).rounded()))ms)" : "")
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

    static let style = """
        body{font-family:sans-serif;margin:24px;color:#222;max-width:1352px}
        h1{margin-bottom:4px}h2{margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:2px}
        table{border-collapse:collapse;margin:8px 0;max-width:100%}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
        th{background:#f4f4f4}table.facts th{width:14em}
        svg{max-width:100%;height:auto;display:block}
        pre{background:#f6f6f6;padding:8px;white-space:pre-wrap;overflow-wrap:anywhere;margin:4px 0 8px}
        code{overflow-wrap:anywhere}details{margin:8px 0}summary{cursor:pointer}details.fault-detail>:not(summary){margin-left:18px}
        .verdict{padding:2px 10px;border-radius:4px;color:#fff;font-size:0.8em;vertical-align:middle;background:#757575}
        .verdict.held{background:#2e7d32}.verdict.deviated,.verdict.aborted,.verdict.inconclusive{background:#c66900}.verdict.failed{background:#b71c1c}
        .abort td,tr.abort td{color:#b00}
        """

    public static func html(_ report: RunReport) -> String {
        let verdict = report.verdict ?? report.state.rawValue
        // The closures say they make Strings: GRDB's SQL, visible here, can be built from a string literal too.
        let header = facts(report).map { fact -> String in
            let value = switch fact.style {
            case .text: escape(fact.value)
            case .code: "<code>\(escape(fact.value))</code>"
            case .verdict: "<b>\(escape(fact.value))</b> (exit \(report.exitCode))"
            case .runbook: htmlRunbook(fact.value)
            }
            return "<tr\(fact.label == "abort" || fact.label == "why" ? " class=\"abort\"" : "")><th>\(escape(fact.label))</th><td>\(value)</td></tr>"
        }.joined()
        let description = report.description.map { "<p class=\"description\">\(escape($0))</p>" } ?? ""
        let faultRows = report.faults.map { fault in
            "<tr><td>\(escape(fault.name))</td><td>\(fault.type.rawValue)</td><td>\(escape(fault.target))</td><td>\(seconds(fault.injectedAt))</td><td>\(seconds(fault.revertedAt))</td><td>\(escape(faultState(fault)))</td><td>\(escape(actedOn(fault)))</td></tr>"
        }.joined()
        let faultDetails = report.faults.map { fault -> String in
            let commands = [("Inject", fault.injectCommands), ("Revert", fault.revertCommands)].map { title, commands -> String in
                commands.isEmpty ? "<p>\(title): no command recorded.</p>" : "<p>\(title):</p><pre>\(escape(commands.joined(separator: "\n")))</pre>"
            }.joined()
            return "<details class=\"fault-detail\" open><summary><b>\(escape(fault.name))</b>: \(escape(fault.summary))</summary>\(commands)</details>"
        }.joined()
        let probeRows = probeRows(report).map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined()
        let traced = tracedFailures(report)
        let traces = traced.isEmpty ? "" : "<h2>Failing probe requests and their traces</h2><p>Search the tracing backend for the trace ID; the request carried it to the service in its <code>traceparent</code> header.</p><table id=\"traces\"><tr><th>probe</th><th>phase</th><th>at</th><th>result</th><th>trace ID</th></tr>"
            + traced.prefix(tracedLimit).map { "<tr><td>\(escape($0.probe))</td><td>\($0.phase.rawValue)</td><td>\(seconds($0.at))</td><td>\(escape(tracedResult($0)))</td><td><code>\($0.traceID.map(escape) ?? "")</code></td></tr>" }.joined()
            + "</table>" + (traced.count > tracedLimit ? "<p>\(traced.count - tracedLimit) more in report.json.</p>" : "")
        let chart = report.probes.isEmpty && report.faults.allSatisfy { $0.injectedAt == nil } ? "" : "<h2>Probe latency and fault windows</h2>\(svg(report))"
        return """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Faultline: \(escape(report.scenario)) (\(escape(verdict)))</title>
            <style>\(style)</style>
            </head><body>
            <h1>Game day: \(escape(report.scenario)) <span class="verdict \(escape(verdict))">\(escape(verdict)) (exit \(report.exitCode))</span></h1>
            \(description)
            <table class="facts">\(header)</table>
            \(chart)
            \(timelineHTML(report))
            \(impactHTML(report))
            <h2>Faults</h2>
            <table id="faults"><tr><th>fault</th><th>type</th><th>target</th><th>injected</th><th>reverted</th><th>state</th><th>acted on</th></tr>\(faultRows)</table>
            \(faultDetails)
            <h2>Probes</h2>
            <table id="probes"><tr>\(probeColumns.map { "<th>\($0)</th>" }.joined())</tr>\(probeRows)</table>
            \(traces)
            \(reviewHTML(report))
            </body></html>

            """
    }
}
