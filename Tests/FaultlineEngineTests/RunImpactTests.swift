import FaultlineCore
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
        let recovery = RunReport.recovery(probes: samples, faults: faults, detection: detection)
        #expect(recovery == [RunReport.Recovery(fault: "a", probe: "web", seconds: 0.5)])
        // A probe still bad at the end never recovered.
        let stuck = Self.samples(badFrom: 2.5, badTo: 99)
        let seen = RunReport.detection(probes: stuck, faults: [Self.fault("a", 2, 4)])
        #expect(RunReport.recovery(probes: stuck, faults: [Self.fault("a", 2, 4)], detection: seen) == [RunReport.Recovery(fault: "a", probe: "web", seconds: nil)])
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
