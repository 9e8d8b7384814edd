import Foundation

/// Renders a plan for people (text) or programs (JSON).
public enum PlanRenderer {
    public static func text(_ plan: Plan) -> String {
        var out = "Plan for \(plan.scenario) (run \(plan.runID)): at most \(plan.maxDuration); everything is reverted by then.\n"
        if let runbook = plan.runbook { out += "Runbook: \(runbook)\n" }
        if !plan.notes.isEmpty {
            out += "\nFacts and notes:\n" + plan.notes.map { "  - \($0)\n" }.joined()
        }
        out += "\nSteady state (checked before the method, during it, and after):\n" + plan.steadyState.map { "  - \($0)\n" }.joined()
        out += "\nTimeline:\n"
        for entry in plan.timeline {
            let at = "+\(entry.at)".padding(toLength: 9, withPad: " ", startingAt: 0)
            let event = entry.event.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
            out += "  \(at)\(event)" + (entry.fault.map { "\($0): " } ?? "") + entry.detail + "\n"
        }
        for fault in plan.faults {
            out += "\nFault \(fault.name) (\(fault.type.rawValue) via \(fault.mechanism)) on \(fault.target), +\(fault.start) to +\(fault.end)\n"
            out += "  \(fault.summary)\n"
            if !fault.exemptions.isEmpty {
                out += "  Exempt (never touched):\n" + fault.exemptions.map { "    - \($0.reason): \($0.traffic)\n" }.joined()
            }
            out += "  Inject:\n" + fault.inject.map { "    \(line($0))\n" }.joined()
            let batched = !IptablesBatch.revertSteps(fault.revert.compactMap { if case .command(let argv) = $0 { argv } else { nil } }).allSatisfy { $0.batch == nil }
            out += "  Revert" + (batched ? " (the iptables commands run as one iptables-restore batch per family, then one by one if it fails)" : "") + ":\n"
                + fault.revert.map { "    \(line($0))\n" }.joined()
        }
        if !plan.warnings.isEmpty {
            out += "\nWarnings (the run would start, but check these):\n" + plan.warnings.map { "  - \($0)\n" }.joined()
        }
        if !plan.problems.isEmpty {
            out += "\nProblems (the run would not start until they are fixed):\n" + plan.problems.map { "  - \($0)\n" }.joined()
        }
        return out
    }

    static func line(_ action: PlanAction) -> String {
        switch action {
        case .command(let argv): "$ " + ShellQuote.join(argv)
        case .batch(let argv, let input): "$ " + ShellQuote.join(argv) + " <<'EOF'\n" + input.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n") + "\n      EOF"
        case .start(let argv, _): "$ " + ShellQuote.join(argv) + " &   (runs until the revert)"
        case .call(let call): "(faultline) " + call.description
        }
    }

    public static func json(_ plan: Plan) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(plan), as: UTF8.self) + "\n"
    }
}
