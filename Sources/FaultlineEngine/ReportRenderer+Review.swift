import FaultlineCore
import Foundation

/// The blameless review, prefilled with what the run knows (what was injected when, what it acted on, what the
/// probes saw, how soon, how long recovery took), with the sections only people can fill left for them. Written as
/// `review.md` to paste into a postmortem, and shown at the end of report.md and report.html.
extension ReportRenderer {
    /// A section of the review: its title and its lines; no lines: for the team to fill in.
    struct ReviewSection {
        var title: String
        var lines: [String]
    }

    static let forTheTeam = "_(for the team)_"

    static func reviewSections(_ report: RunReport) -> [ReviewSection] {
        var happened = ["Verdict: \(report.verdict ?? report.state.rawValue) (exit \(report.exitCode))" + (report.abortReason.map { ": \($0)" } ?? "") + "."]
        for fault in report.faults {
            guard let from = fault.injectedAt else {
                happened.append("\(fault.name) (\(fault.type.rawValue)) was not injected: the run ended before its time.")
                continue
            }
            var line = "At \(seconds(from)), \(fault.name) went in on \(fault.target): \(fault.summary)"
            if let evidence = fault.evidence { line += "; it acted on " + (evidence.hits > 0 ? "\(evidence.amount) (\(evidence.detail))" : "nothing (\(evidence.detail))") }
            line += fault.revertedAt.map { "; reverted at \(seconds($0)), after \(String(format: "%.1f", $0 - from)) s" } ?? "; state \(fault.state.rawValue)"
            if let note = fault.note { line += " (\(note))" }
            happened.append(line + ".")
        }
        if let abortedAt = report.abortedAt, let reason = report.abortReason { happened.append("At \(seconds(abortedAt)), the run aborted: \(reason).") }

        var seen: [String] = []
        let rows = report.impact ?? []
        for row in rows where row.phase == .fault && row.count > 0 {
            let baseline = rows.first { $0.probe == row.probe && $0.phase == .baseline }
            var line = "\(row.probe) during \(row.fault ?? "a fault"): \(percent(row.errorRate)) of \(row.count) results bad, p95 \(milliseconds(row.p95))"
            if let before = baseline?.p95 { line += " (baseline p95 \(milliseconds(before)))" }
            seen.append(line + ".")
        }
        if let slo = report.slo { seen.append("SLO \(sloWords(slo)).") }
        if seen.isEmpty { seen.append("No probe result during the method.") }

        var detected = detectionLines(report).map { $0 + "." }
        if detected.isEmpty { detected = ["No probe saw a fault: no bad result while one was in place."] }
        if let recovery = recoveryWords(report) { detected.append("The steady state after the method: \(recovery).") }

        return [
            ReviewSection(title: "What happened", lines: happened),
            ReviewSection(title: "What the probes saw", lines: seen),
            ReviewSection(title: "How it was detected, and how long recovery took", lines: detected),
            ReviewSection(title: "What surprised us", lines: []),
            ReviewSection(title: "What would detect it sooner", lines: []),
            ReviewSection(title: "Follow-ups (owner, due date)", lines: []),
        ]
    }

    /// `review.md`: the prefilled review on its own, to paste into a postmortem.
    public static func review(_ report: RunReport) -> String {
        var out = "# Review: \(markdownText(report.scenario)), run \(report.runID)\n\n"
        out += "\(ISO8601DateFormatter().string(from: report.startedAt)) on \(markdownText(report.host)) by \(markdownText(report.user))"
        if let runbook = report.runbook { out += "; runbook: \(markdownRunbook(runbook))" }
        out += ".\nBlameless: what happened and what we learn from it. Faultline filled in what the run knows; the rest is for the team.\n"
        return out + reviewMarkdown(report, level: "##")
    }

    static func reviewMarkdown(_ report: RunReport, level: String) -> String {
        reviewSections(report).map { section in
            "\n\(level) \(section.title)\n\n" + (section.lines.isEmpty ? "- \(forTheTeam)\n" : section.lines.map { "- \(markdownText($0))\n" }.joined())
        }.joined()
    }

    static func reviewHTML(_ report: RunReport) -> String {
        "<h2>Review (blameless)</h2>" + reviewSections(report).map { section in
            "<h3>\(escape(section.title))</h3><ul>" + (section.lines.isEmpty ? "<li><i>(for the team)</i></li>" : section.lines.map { "<li>\(escape($0))</li>" }.joined()) + "</ul>"
        }.joined()
    }
}

extension ReportRenderer {
    /// What the live view leaves on the terminal when the run is over: the verdict, each fault with what it acted on
    /// and what each probe saw during it, the SLO and recovery, and where the reports are.
    public static func terminalSummary(_ report: RunReport, files: [String]) -> String {
        var lines = ["── run \(report.runID) · \(report.scenario): \(report.verdict ?? report.state.rawValue) (exit \(report.exitCode)) ──"]
        if let reason = report.abortReason { lines.append("  \(report.abortedAt == nil ? "why" : "abort"): \(reason)") }
        let rows = report.impact ?? []
        for fault in report.faults {
            let acted = fault.injectedAt == nil ? "not injected" : fault.evidence == nil ? "what it acted on was not read" : "acted on " + actedOn(fault)
            var line = "  \(fault.name): \(fault.type.rawValue), " + acted
            let seen = rows.filter { $0.phase == .fault && $0.fault == fault.name && $0.count > 0 }.map { row in
                let baseline = rows.first { $0.probe == row.probe && $0.phase == .baseline }?.p95
                return "\(row.probe) \(percent(row.errorRate)) bad, p95 \(milliseconds(row.p95))" + (baseline.map { " (baseline \(milliseconds($0)))" } ?? "")
            }
            if !seen.isEmpty { line += "; " + seen.joined(separator: "; ") }
            lines.append(line)
        }
        if let slo = report.slo { lines.append("  SLO \(sloWords(slo))") }
        if let recovery = recoveryWords(report) { lines.append("  recovery: \(recovery)") }
        if !files.isEmpty { lines.append("  reports: " + files.joined(separator: ", ")) }
        return lines.joined(separator: "\n") + "\n"
    }
}
