import FaultlineCore
import Foundation

/// The run as a list of what happened when: each inject, the first bad result each probe saw after it, the abort,
/// each revert and the recovery; the "Timeline" of report.md and report.html.
extension ReportRenderer {
    /// One row of the timeline: when (seconds after the method started; nil: not at a moment), what, and the detail.
    struct TimelineEvent {
        enum Kind: Int, Comparable {
            case inject, firstBad, abort, revert, recovery

            static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
        }

        var at: Double?
        var kind: Kind
        var event: String
        var detail: String
    }

    /// The events in time order (at the same moment: inject, first bad result, abort, revert, recovery); what has no
    /// moment (a probe never back) last.
    static func timeline(_ report: RunReport) -> [TimelineEvent] {
        var events: [TimelineEvent] = []
        for fault in report.faults {
            guard let from = fault.injectedAt else { continue }
            events.append(TimelineEvent(at: from, kind: .inject, event: "inject \(fault.name)", detail: "\(fault.type.rawValue) on \(fault.target): \(fault.summary)"))
        }
        for seen in report.detection ?? [] {
            let sample = report.probes.first { $0.probe == seen.probe && $0.at == seen.at && !$0.good }
            let what = sample.map { "\($0.detail) (\(milliseconds($0.latency)))" } ?? "a bad result"
            events.append(TimelineEvent(at: seen.at, kind: .firstBad, event: "first bad result",
                                        detail: "probe \(seen.probe): \(what); \(String(format: "%.1f", seen.seconds)) s after \(seen.fault) went in"))
        }
        if let abortedAt = report.abortedAt {
            events.append(TimelineEvent(at: abortedAt, kind: .abort, event: "abort", detail: report.abortReason ?? "the run was stopped"))
        }
        for fault in report.faults {
            guard let to = fault.revertedAt else { continue }
            var detail = fault.injectedAt.map { "in place \(String(format: "%.1f", to - $0)) s" } ?? "reverted"
            if fault.evidence != nil { detail += "; acted on " + actedOn(fault) }
            if let error = fault.error { detail += "; \(fault.state.rawValue): \(error)" }
            events.append(TimelineEvent(at: to, kind: .revert, event: "revert \(fault.name)", detail: detail))
        }
        for back in report.recovery ?? [] {
            guard let reverted = report.faults.first(where: { $0.name == back.fault })?.revertedAt else { continue }
            if let seconds = back.seconds {
                events.append(TimelineEvent(at: reverted + seconds, kind: .recovery, event: "back within baseline",
                                            detail: "probe \(back.probe): \(String(format: "%.1f", seconds)) s after \(back.fault) was reverted"))
            } else {
                events.append(TimelineEvent(at: nil, kind: .recovery, event: "not back within baseline",
                                            detail: "probe \(back.probe): not back within its baseline after \(back.fault) was reverted, by the end of the run"))
            }
        }
        if let lastRevert = report.faults.compactMap(\.revertedAt).max(), let window = report.recoveryWindow {
            if let took = report.recoveredAfter {
                events.append(TimelineEvent(at: lastRevert + took, kind: .recovery, event: "steady state back",
                                            detail: "the probes passed again \(String(format: "%.1f", took)) s after the last revert (recovery window \(TimeSpan.trim(window)) s)"))
            } else if report.steadyStateAfter == false {
                events.append(TimelineEvent(at: lastRevert + window, kind: .recovery, event: "recovery window over",
                                            detail: "the steady state was not back within \(TimeSpan.trim(window)) s of the last revert"))
            }
        }
        return events.enumerated().sorted { a, b in
            switch (a.element.at, b.element.at) {
            case let (x?, y?) where x != y: x < y
            case (_?, nil): true
            case (nil, _?): false
            default: (a.element.kind, a.offset) < (b.element.kind, b.offset)
            }
        }.map(\.element)
    }

    static func timelineMarkdown(_ report: RunReport) -> String {
        let events = timeline(report)
        guard !events.isEmpty else { return "\n## Timeline\n\nNothing was injected.\n" }
        return "\n## Timeline\n\n| at | event | detail |\n| --- | --- | --- |\n"
            + events.map { "| \(seconds($0.at)) | \(markdownCell($0.event)) | \(markdownCell($0.detail)) |\n" }.joined()
    }

    static func timelineHTML(_ report: RunReport) -> String {
        let events = timeline(report)
        guard !events.isEmpty else { return "<h2>Timeline</h2><p>Nothing was injected.</p>" }
        return "<h2>Timeline</h2><table id=\"events\"><tr><th>at</th><th>event</th><th>detail</th></tr>"
            + events.map { "<tr class=\"\(String(describing: $0.kind))\"><td>\(seconds($0.at))</td><td>\(escape($0.event))</td><td>\(escape($0.detail))</td></tr>" }.joined()
            + "</table>"
    }
}
