import FaultlineCore
import FaultlineProbes
import Foundation
@testable import FaultlineEngine
import Testing

/// Impact per phase, time to detect and time to recover, from a report's samples and fault windows. No root.
@Suite struct RunImpactTests {
    typealias Sample = RunReport.ProbeSample

    /// One probe every 0.5 s from -2 s to +12 s: good at 10 ms, except inside [from, to) where it is bad at 300 ms.
    static func samples(badFrom: Double, badTo: Double, probe: String = "web") -> [Sample] {
        stride(from: -2.0, through: 12.0, by: 0.5).map { at in
            let bad = at >= badFrom && at < badTo
            return Sample(probe: probe, phase: at < 0 ? .before : at <= 10 ? .method : .after, at: at, ok: !bad, good: !bad,
                          latency: bad ? 0.3 : 0.01, detail: bad ? "status 503" : "status 200")
        }
    }

    static func fault(_ name: String, _ from: Double?, _ to: Double?) -> RunReport.FaultRecord {
        RunReport.FaultRecord(name: name, type: .drop, target: "this host", summary: "drop", injectedAt: from, revertedAt: to,
                              injectCommands: [], revertCommands: [], state: from == nil ? .notInjected : .reverted, error: nil)
    }

    @Test("baseline, each fault's window, the gap between them and after the last revert, with counts, error rates and percentiles")
    func phases() {
        // Fault a from 2 to 4 s (the probe fails from 2.5 to 4.5 s), fault b from 6 to 8 s (no effect).
        let samples = Self.samples(badFrom: 2.5, badTo: 4.5)
        let rows = RunReport.impact(probes: samples, faults: [Self.fault("a", 2, 4), Self.fault("b", 6, 8), Self.fault("never", nil, nil)])
        #expect(rows.map(\.phase) == [.baseline, .fault, .between, .fault, .after])
        #expect(rows.map(\.fault) == [nil, "a", nil, "b", nil])
        let baseline = rows[0], a = rows[1], gap = rows[2], b = rows[3], after = rows[4]
        #expect(baseline.count == 8 && baseline.errorRate == 0 && baseline.p50 == 0.01 && baseline.to == 2 && baseline.from == nil)
        // a's window: 2.0 ... 3.5 = 4 results, 3 of them bad (2.5, 3.0, 3.5).
        #expect(a.count == 4 && a.errorRate == 0.75 && a.p50 == 0.3 && a.p95 == 0.3 && a.from == 2 && a.to == 4)
        // Between 4 and 6: 4.0 bad, 4.5 to 5.5 good.
        #expect(gap.count == 4 && gap.errorRate == 0.25)
        #expect(b.count == 4 && b.errorRate == 0 && b.p99 == 0.01)
        #expect(after.count == 9 && after.from == 8 && after.to == nil)
        // Nothing injected: all of it is the baseline.
        let none = RunReport.impact(probes: samples, faults: [Self.fault("never", nil, nil)])
        #expect(none.count == 1 && none[0].phase == .baseline && none[0].count == samples.count)
    }

    @Test("time to detect is the first bad result after the inject; time to recover is from the revert to the first result back within the baseline's p95; a probe that never saw a fault has neither")
    func detectionAndRecovery() {
        let samples = Self.samples(badFrom: 2.5, badTo: 4.5) + Self.samples(badFrom: 100, badTo: 101, probe: "calm")
        let faults = [Self.fault("a", 2, 4), Self.fault("b", 6, 8)]
        let detection = RunReport.detection(probes: samples, faults: faults)
        #expect(detection == [RunReport.Detection(fault: "a", probe: "web", at: 2.5, seconds: 0.5)])
        let recovery = RunReport.recovery(probes: samples, faults: faults, impact: RunReport.impact(probes: samples, faults: faults), detection: detection)
        #expect(recovery == [RunReport.Recovery(fault: "a", probe: "web", seconds: 0.5)])
        // A probe still bad at the end never recovered.
        let stuck = Self.samples(badFrom: 2.5, badTo: 99)
        let seen = RunReport.detection(probes: stuck, faults: [Self.fault("a", 2, 4)])
        #expect(RunReport.recovery(probes: stuck, faults: [Self.fault("a", 2, 4)], impact: RunReport.impact(probes: stuck, faults: [Self.fault("a", 2, 4)]), detection: seen) == [RunReport.Recovery(fault: "a", probe: "web", seconds: nil)])
    }

    @Test("the report carries impact, detection and recovery in report.json")
    func inTheReport() throws {
        let report = RunReport(scenario: "s", description: nil, runID: "r", host: "h", user: "u", startedAt: .now, endedAt: .now,
                               state: .deviated, exitCode: 1, abortReason: nil, abortedAt: nil, runbook: nil, steadyStateBefore: true,
                               steadyStateAfter: true, slo: nil, faults: [Self.fault("a", 2, 4)], probes: Self.samples(badFrom: 2.5, badTo: 4.5),
                               review: [:])
        #expect(report.impact?.count == 3 && report.detection?.count == 1 && report.recovery?.first?.seconds == 0.5)
        #expect(report.verdict == "deviated")
    }
}

/// The live view's block and the summary it leaves at the end. No terminal needed: the lines are checked.
@Suite struct LiveViewTests {
    @Test("each probe shows its bad share in the burn-rate window and the burn against its limit, the header the real end, a fault what it acted on; colour only when asked; the summary at the end has the verdict, impact per fault and the reports")
    func linesSayWhatMatters() throws {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: live}
            spec:
              maxDuration: 2m
              steadyState:
                probes:
                  - {name: web, tcp: {address: "127.0.0.1:9"}, interval: 1s}
                slo: {objective: 90%}
                abortWhen: {burnRate: {factor: 5, window: 10s}}
              faults:
                - {name: burn, type: cpu-stress, start: 5s, duration: 25s}
            """, file: "live.yaml")
        let plan = Planner(facts: HostFacts()).plan(scenario, runID: "l1v3l1v3")
        let ledger = ProbeLedger(steadyState: scenario.spec.steadyState)
        let probe = try #require(scenario.spec.steadyState?.probes.first)
        for index in 0..<10 {
            _ = ledger.record(probe, ProbeOutcome(ok: index % 2 == 0, latency: 0.01, detail: index % 2 == 0 ? "connected" : "refused", status: nil),
                              phase: .method, at: Double(index))
        }
        let progress = ExperimentRunner.FaultProgress()
        progress.update("burn") { $0.state = .active; $0.evidence = FaultEvidence(hits: 0, unit: "cpu-seconds", detail: "none") }
        let source = RunMonitor.Source(plan: plan, progress: progress, ledger: ledger, methodStart: .now)
        let plain = LiveView(width: 200) { _ in }.render(source)
        #expect(plain[0].contains("ends in 30s (at most 2m00s)"), "\(plain[0])")
        #expect(plain.contains { $0.contains("acted on nothing") }, "\(plain)")
        #expect(plain.contains { $0.contains("FAIL") && $0.contains("bad 50% in 10s, burn 5.0× (aborts over 5×)") }, "\(plain)")
        #expect(!plain.joined().contains("\u{1B}["))
        let coloured = LiveView(width: 200, colour: true) { _ in }.render(source)
        #expect(coloured.contains { $0.contains("\u{1B}[31mFAIL\u{1B}[0m") }, "\(coloured)")

        let report = RunReport(scenario: "live", description: nil, runID: "l1v3l1v3", host: "h", user: "u", startedAt: .now, endedAt: .now,
                               state: .inconclusive, exitCode: 5, abortReason: "fault 'burn' acted on nothing", abortedAt: nil, runbook: nil,
                               steadyStateBefore: true, steadyStateAfter: true, slo: ledger.verdict(),
                               faults: [RunImpactTests.fault("burn", 5, 30)], probes: ledger.samples, review: [:])
        let summary = ReportRenderer.terminalSummary(report, files: ["out/report.html", "out/junit.xml"])
        #expect(summary.hasPrefix("── run l1v3l1v3 · live: inconclusive (exit 5) ──\n  why: fault 'burn' acted on nothing\n"), "\(summary)")
        #expect(summary.contains("  burn: drop, what it acted on was not read; web 60% bad, p95 10 ms (baseline 10 ms)"), "\(summary)")
        #expect(summary.hasSuffix("  reports: out/report.html, out/junit.xml\n"), "\(summary)")
    }
}
