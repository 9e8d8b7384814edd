import FaultlineCore
@testable import FaultlineEngine
import FaultlineFaults
import FaultlineJournal
import FaultlineProbes
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Synchronization
import Testing

/// The runner in-process through `RunSession`, with fake drivers and scripted probes: the timeline, every way a run
/// ends, the verdicts and the events subscribers see. No root, no processes, no network; a state directory in /tmp.
@Suite struct RunnerTests {
    /// One run's rig: its state directory, its fakes and what its log saw.
    final class Rig: Sendable {
        let directory: String
        let drivers = Mutex<[String: FakeDriver]>([:])
        let events = Mutex<[RunEvent]>([])
        let lines = Mutex<[String]>([])

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-runner-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func driver(_ name: String) -> FakeDriver? { drivers.withLock { $0[name] } }

        /// Runs `faults` (YAML list items) with `steadyState` (YAML lines) to its end, or until `stop` fires.
        func run(faults: String, steadyState: String = Rig.oneProbe, maxDuration: String = "5s", scripts: [String: FakeDriver.Script] = [:],
                 probes: ScriptedProbes = .healthy, stop: StopSignal = StopSignal(), monitor: RunMonitor? = nil) async throws -> RunReport {
            let yaml = """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: runner-test}
                spec:
                  maxDuration: \(maxDuration)
                  steadyState:
                \(steadyState)
                  faults:
                \(faults)
                """
            let scenario = try ScenarioLoader.load(yaml: yaml, file: "runner.yaml")
            var settings = RunSession.Settings(stateDirectory: directory)
            settings.guarded = false
            settings.facts = { _, _ in HostFacts() }
            settings.preflight = { _ in PreflightReport(effectiveCapabilities: [], checks: []) }
            settings.probes = { _, _ in probes }
            settings.drivers = { [self] planned, _ in
                let driver = FakeDriver(name: planned.name, script: scripts[planned.name] ?? .init())
                drivers.withLock { $0[planned.name] = driver }
                return driver
            }
            let log = EventLog(format: .text, run: "test", scenario: "runner-test", minimum: .debug, observe: { [self] event, _ in
                events.withLock { $0.append(event) }
            }, write: { [self] line in lines.withLock { $0.append(line) } })
            let session = RunSession(scenario: scenario, runID: RunID.random(), settings: settings, journal: try Journal(directory: directory),
                                     context: DriverContext(protected: []), log: log)
            let prepared = try await session.prepare()
            #expect(prepared.refusals.isEmpty, "\(prepared.refusals)")
            let locks = try session.lock(prepared)
            defer { withExtendedLifetime(locks) {} }
            return await session.execute(prepared, stop: stop, monitor: monitor)
        }

        static let oneProbe = """
                probes:
                  - {name: web, http: {url: "http://127.0.0.1:9/"}, interval: 20ms}
            """

        /// The names of the events seen, in order, without the probe results.
        var timeline: [RunEvent.Name] { events.withLock { $0 }.filter { $0.level > .debug }.map(\.name) }
    }

    static func stress(_ name: String, start: String = "0s", duration: String = "300ms") -> String {
        "    - {name: \(name), type: cpu-stress, start: \(start), duration: \(duration), workers: 1, load: 10%}"
    }

    static let failing = ProbeOutcome(ok: false, latency: 0.5, detail: "status 503", status: 503)
    static let good = ProbeOutcome(ok: true, latency: 0.005, detail: "status 200", status: 200)

    @Test("held: the steady state before, the fault in place for its duration, reverted, the steady state after; exit 0")
    func held() async throws {
        let rig = try Rig()
        let report = try await rig.run(faults: Self.stress("burn"))
        #expect(report.state == .succeeded && report.exitCode == 0, "\(report.abortReason ?? "")")
        #expect(rig.driver("burn")?.log == ["apply", "revert"])
        let fault = try #require(report.faults.first)
        #expect(fault.state == .reverted)
        let window = try #require(fault.revertedAt) - (try #require(fault.injectedAt))
        #expect(window >= 0.2 && window < 1.5, "in place for about its duration (0.3 s from the method's start), was \(window)")
        #expect(rig.timeline.prefix(3) == [.start, .method, .inject], "\(rig.timeline)")
        #expect(rig.timeline.suffix(3) == [.revert, .after, .end], "\(rig.timeline)")
        #expect(report.steadyStateBefore && report.steadyStateAfter == true)
        #expect(report.probes.contains { $0.phase == .method } && report.probes.contains { $0.phase == .after })
        #expect(report.abortCause == nil && report.abortReason == nil)
    }

    @Test("the steady state does not hold before the method: deviated (exit 1), nothing injected")
    func deviatedBefore() async throws {
        let rig = try Rig()
        let report = try await rig.run(faults: Self.stress("burn"), probes: ScriptedProbes { _, _ in Self.failing })
        #expect(report.state == .deviated && report.exitCode == 1)
        #expect(rig.driver("burn") == nil, "no driver was even made")
        #expect(report.faults.first?.state == .notInjected)
        #expect(!rig.timeline.contains(.inject))
    }

    @Test("an abort condition (consecutive failures) stops the method early: aborted (exit 1), cause and probe named, the fault reverted long before its end")
    func consecutiveFailures() async throws {
        let rig = try Rig()
        // Good before the method, then failing.
        let probes = ScriptedProbes { _, call in call <= 1 ? Self.good : Self.failing }
        let began = ContinuousClock.now
        let report = try await rig.run(faults: Self.stress("burn", duration: "4s"), steadyState: Rig.oneProbe + "\n    abortWhen: {consecutiveFailures: 3}",
                                       probes: probes)
        #expect(report.state == .aborted && report.exitCode == 1)
        #expect(report.abortCause == .condition && report.abortProbe == "web", "\(String(describing: report.abortCause))")
        #expect(report.abortReason?.contains("failed 3 times in a row") == true, "\(report.abortReason ?? "")")
        #expect(ContinuousClock.now - began < .seconds(3), "aborted, not run to its 4 s")
        #expect(rig.driver("burn")?.log == ["apply", "revert"])
        #expect(report.faults.first?.state == .reverted)
        #expect(rig.events.withLock { $0 }.contains { if case .aborted(.condition, _, "web") = $0 { true } else { false } })
    }

    @Test("burn rate: more bad results in its window than the budget allows aborts (exit 1, cause condition)")
    func burnRate() async throws {
        let rig = try Rig()
        // Every other result of the method is bad: 50% bad against 6 × 1% allowed.
        let probes = ScriptedProbes { _, call in call <= 1 || call % 2 == 0 ? Self.good : Self.failing }
        let report = try await rig.run(faults: Self.stress("burn", duration: "4s"),
                                       steadyState: Rig.oneProbe + "\n    slo: {objective: 99%}\n    abortWhen: {burnRate: {factor: 6, window: 1m}}", probes: probes)
        #expect(report.state == .aborted && report.abortCause == .condition, "\(report.state)")
        #expect(report.abortReason?.contains("error budget burning too fast") == true, "\(report.abortReason ?? "")")
        #expect(report.slo?.met == false)
    }

    @Test("an inject that fails aborts the run (cause inject-failed): what was applied is undone, later faults never go in")
    func injectFails() async throws {
        let rig = try Rig()
        let report = try await rig.run(faults: Self.stress("first") + "\n" + Self.stress("second", start: "200ms"),
                                       scripts: ["first": .init(applyFails: "no such cgroup")])
        #expect(report.state == .aborted && report.exitCode == 1)
        #expect(report.abortCause == .injectFailed)
        #expect(report.faults.map(\.state) == [.failed, .notInjected], "\(report.faults.map(\.state))")
        #expect(rig.driver("first")?.log == ["apply", "revert"], "the half-applied fault is undone")
        #expect(rig.driver("second") == nil)
    }

    @Test("a revert that fails: failed, exit 4, the journal keeps it for recover")
    func revertFails() async throws {
        let rig = try Rig()
        let report = try await rig.run(faults: Self.stress("stuck", duration: "100ms"), scripts: ["stuck": .init(revertFails: "device busy")])
        #expect(report.state == .failed && report.exitCode == 4)
        #expect(report.faults.first?.state == .revertFailed)
        let journal = try Journal(directory: rig.directory)
        #expect(try journal.faults(of: report.runID).first?.state == .revertFailed)
        #expect(rig.events.withLock { $0 }.contains { if case .revertFailed("stuck", _, _) = $0 { true } else { false } })
    }

    @Test("a fault that did not fully act while the steady state held: inconclusive, exit 5, with why")
    func degraded() async throws {
        let rig = try Rig()
        let report = try await rig.run(faults: Self.stress("weak"), scripts: ["weak": .init(degrades: "the hog ended early")])
        #expect(report.state == .inconclusive && report.exitCode == 5)
        #expect(report.faults.first?.state == .degraded)
        #expect(report.abortReason?.contains("the hog ended early") == true)
    }

    @Test("a fault that acted on nothing proves nothing: inconclusive, exit 5, its evidence in the report and the events")
    func actedOnNothing() async throws {
        let rig = try Rig()
        let report = try await rig.run(faults: Self.stress("idle"), scripts: ["idle": .init(hits: 0)])
        #expect(report.state == .inconclusive && report.exitCode == 5 && report.verdict == "inconclusive", "\(report.state)")
        #expect(report.abortReason?.contains("fault 'idle' acted on nothing while it was in place") == true, "\(report.abortReason ?? "")")
        #expect(report.faults.first?.evidence == FaultEvidence(hits: 0, unit: "packets", detail: "0 packets dropped by the fake"))
        #expect(rig.events.withLock { $0 }.contains { if case .evidence("idle", let evidence) = $0 { evidence.hits == 0 } else { false } })
        // Unreadable counters prove nothing either.
        let unread = try await Rig().run(faults: Self.stress("blind"), scripts: ["blind": .init(hits: nil)])
        #expect(unread.state == .inconclusive && unread.exitCode == 5, "\(unread.state)")
        #expect(unread.abortReason?.contains("what fault 'blind' did cannot be read (the fake's counters are gone)") == true, "\(unread.abortReason ?? "")")
        #expect(unread.faults.first?.evidence == nil)
        // A driver with nothing to read proves nothing either: no evidence is never taken for "it acted".
        let blind = try await Rig().run(faults: Self.stress("mute"), scripts: ["mute": .init(readsEvidence: false)])
        #expect(blind.state == .inconclusive && blind.exitCode == 5, "\(blind.state)")
        #expect(blind.abortReason?.contains("what fault 'mute' did cannot be read (nothing was read before its revert)") == true, "\(blind.abortReason ?? "")")
        // A fault that acted: held, and its evidence says on what.
        let held = try await Rig().run(faults: Self.stress("busy"))
        #expect(held.state == .succeeded && held.exitCode == 0 && held.verdict == "held")
        #expect(held.faults.first?.evidence?.hits == 7)
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(held)) as? [String: Any]
        let fault = (json?["faults"] as? [[String: Any]])?.first
        #expect(json?["verdict"] as? String == "held")
        #expect((fault?["evidence"] as? [String: Any])?["unit"] as? String == "packets")
    }

    @Test("a recovery window: after the last revert the probes are checked until they pass; back in time: held, with how long it took; never back: deviated, exit 1, with why")
    func recoveryWindow() async throws {
        // Bad from the start of the method until 400 ms after the fault's end (a 300 ms fault from +0s).
        func probes(backAfter: Duration) -> ScriptedProbes {
            let began = Mutex<ContinuousClock.Instant?>(nil)
            return ScriptedProbes { _, call in
                let start = began.withLock { start in
                    if call > 1, start == nil { start = .now }
                    return start
                }
                guard let start else { return Self.good }
                return ContinuousClock.now - start < .milliseconds(300) + backAfter ? Self.failing : Self.good
            }
        }
        let window = """
                probes:
                  - {name: web, http: {url: "http://127.0.0.1:9/"}, interval: 100ms}
                recoveryWindow: 2s
            """
        let back = try await Rig().run(faults: Self.stress("burn"), steadyState: window, probes: probes(backAfter: .milliseconds(400)))
        #expect(back.state == .succeeded && back.exitCode == 0, "\(back.state) \(back.abortReason ?? "")")
        #expect(back.recoveryWindow == 2 && (back.recoveredAfter ?? 0) > 0.2 && (back.recoveredAfter ?? 9) < 1.5, "\(back.recoveredAfter ?? -1)")
        #expect(back.probes.filter { $0.phase == .after }.count >= 3, "checked again and again after the method")
        #expect(ReportRenderer.markdown(back).contains("| recovery | back "), "\(ReportRenderer.markdown(back))")

        let never = try await Rig().run(faults: Self.stress("burn"), steadyState: window, probes: probes(backAfter: .seconds(60)))
        #expect(never.state == .deviated && never.exitCode == 1, "\(never.state)")
        #expect(never.abortReason == "the steady state did not come back within the recovery window of 2s after the last revert", "\(never.abortReason ?? "")")
        #expect(never.recoveredAfter == nil && never.steadyStateAfter == false)
        #expect(ReportRenderer.markdown(never).contains("| recovery | not back within the recovery window of 2s |"))
    }

    @Test("Ctrl-C during the recovery window ends the watch at once: after an abort the run stays aborted (exit 1), after a normal end it is interrupted (exit 130); recovery 'not watched'")
    func ctrlCDuringTheRecoveryWindow() async throws {
        let window = """
                probes:
                  - {name: web, http: {url: "http://127.0.0.1:9/"}, interval: 100ms}
                abortWhen: {consecutiveFailures: 2}
                recoveryWindow: 30s
            """
        for aborts in [true, false] {
            // Good before the method; then failing for good (aborting when abortWhen counts them), so the window runs.
            let probes = ScriptedProbes { _, call in call > 1 ? Self.failing : Self.good }
            let stop = StopSignal()
            let rig = try Rig()
            let interrupter = Task {
                while !rig.lines.withLock({ $0.contains { $0.contains("watching the recovery") } }) { try await Task.sleep(for: .milliseconds(20)) }
                try await Task.sleep(for: .milliseconds(300))
                stop.fire(.interrupted)
            }
            let started = ContinuousClock.now
            let report = try await rig.run(faults: Self.stress("burn", duration: aborts ? "3s" : "200ms"),
                                           steadyState: aborts ? window : window.replacingOccurrences(of: "    abortWhen: {consecutiveFailures: 2}\n", with: ""),
                                           probes: probes, stop: stop)
            interrupter.cancel()
            #expect(ContinuousClock.now - started < .seconds(10), "the 30 s window was cut short")
            #expect(report.state == .aborted, "\(report.state)")
            #expect(report.exitCode == (aborts ? 1 : 130), "\(report.exitCode) \(report.abortReason ?? "")")
            #expect(report.recoveredAfter == nil && report.steadyStateAfter == nil)
            #expect(ReportRenderer.markdown(report).contains("| recovery | not watched (the run was interrupted) |"), "\(ReportRenderer.markdown(report))")
            #expect(rig.lines.withLock { $0.contains { $0.contains("the recovery watch stopped (interrupted)") } })
        }
    }

    @Test("a probe with no result from the method proves nothing: inconclusive, exit 5")
    func silentProbe() async throws {
        let rig = try Rig()
        // A load probe answers the check before the method at once; the method's requests take longer than the
        // method, so they are cut off at its end and count for nothing.
        let probes = ScriptedProbes(delay: { _, call in call > 1 ? .seconds(1) : nil }) { _, _ in Self.good }
        let report = try await rig.run(faults: Self.stress("burn", duration: "200ms"), steadyState: """
                probes:
                  - {name: slow, http: {url: "http://127.0.0.1:9/"}, rate: 20}
            """, probes: probes)
        #expect(report.state == .inconclusive && report.exitCode == 5, "\(report.state)")
        #expect(report.abortReason?.contains("probe 'slow' has no result during the method") == true, "\(report.abortReason ?? "")")
    }

    @Test("the SLO missed over the method: deviated, exit 1, with the budget used")
    func sloMissed() async throws {
        let rig = try Rig()
        let probes = ScriptedProbes { _, call in call <= 1 || call % 3 != 0 ? Self.good : Self.failing }
        let report = try await rig.run(faults: Self.stress("burn"), steadyState: Rig.oneProbe + "\n    slo: {objective: 99.9%}", probes: probes)
        #expect(report.state == .deviated && report.exitCode == 1)
        let slo = try #require(report.slo)
        #expect(!slo.met && slo.budgetUsed > 1)
    }

    @Test("stopped from outside: the controller's abort (exit 1, cause controller) and an interrupt (exit 130) both revert at once")
    func stoppedFromOutside() async throws {
        for (reason, state, exit) in [(StopReason.abort(.controller, "aborted by the controller"), RunState.aborted, Int32(1)),
                                      (.interrupted, .aborted, 130)] {
            let rig = try Rig()
            let stop = StopSignal()
            let began = ContinuousClock.now
            Task {
                // Once the fault is in place (5 s at most).
                for _ in 0..<1000 where !rig.events.withLock({ $0.contains { $0.name == .inject } }) { try? await Task.sleep(for: .milliseconds(5)) }
                try? await Task.sleep(for: .milliseconds(100))
                stop.fire(reason)
            }
            let report = try await rig.run(faults: Self.stress("burn", duration: "4s"), stop: stop)
            #expect(report.state == state && report.exitCode == exit, "\(reason): \(report.state) \(report.exitCode)")
            #expect(ContinuousClock.now - began < .seconds(3))
            #expect(rig.driver("burn")?.log == ["apply", "revert"])
            if case .abort = reason { #expect(report.abortCause == .controller) }
        }
    }

    @Test("maxDuration ends the method even while an inject is slow: the fault is reverted as soon as it is in, the run proved nothing (exit 5), and a warning says where the inject's time went")
    func deadline() async throws {
        let rig = try Rig()
        let began = ContinuousClock.now
        let report = try await rig.run(faults: Self.stress("slow", duration: "300ms"), maxDuration: "400ms",
                                       scripts: ["slow": .init(applyDelay: .milliseconds(1_100))])
        #expect(ContinuousClock.now - began < .seconds(3))
        #expect(rig.driver("slow")?.log == ["apply", "revert"])
        let fault = try #require(report.faults.first)
        #expect(fault.state == .reverted && (fault.injectedAt ?? 0) >= 1.0, "\(fault.state) \(fault.injectedAt ?? -1)")
        let slow = rig.lines.withLock { $0 }.filter { $0.contains("fault 'slow' took 1.") }
        #expect(slow.count == 1 && slow[0].contains("s waiting for the faults before it, 1.") && slow[0].contains(" s applying"), "\(rig.lines.withLock { $0 })")
        #expect(report.state == .inconclusive && report.exitCode == 5, "\(report.state) \(report.abortReason ?? "")")
        #expect(report.abortReason?.contains("went in only after the method had ended") == true, "\(report.abortReason ?? "")")
    }

    @Test("the monitor shows each probe's results and the SLO while the method runs")
    func monitor() async throws {
        let rig = try Rig()
        let monitor = RunMonitor()
        let seen = Mutex<RunSnapshot?>(nil)
        Task {
            // Until the method has a few results (or for 2 s at most).
            for _ in 0..<200 {
                try? await Task.sleep(for: .milliseconds(10))
                if let snapshot = monitor.snapshot(), (snapshot.probes.first?.count ?? 0) >= 9 {
                    seen.withLock { $0 = snapshot }
                    return
                }
            }
        }
        let probes = ScriptedProbes { _, call in call % 4 == 0 ? Self.failing : Self.good }
        _ = try await rig.run(faults: Self.stress("burn", duration: "1500ms"), steadyState: Rig.oneProbe + "\n    slo: {objective: 50%}",
                              probes: probes, monitor: monitor)
        let snapshot = try #require(seen.withLock { $0 })
        let web = try #require(snapshot.probes.first)
        #expect(web.probe == "web" && web.count >= 5 && web.bad >= 1 && web.good + web.bad == web.count, "\(web)")
        #expect(web.p95 == 0.5, "the failures' 0.5 s are over the 95th percentile's rank")
        let slo = try #require(snapshot.slo)
        #expect(slo.total > 0 && slo.budgetUsed > 0 && slo.burnRate != nil, "\(slo)")
    }

    @Test("webhooks act on the typed events: start, abort, revert-failed and end; a note named revert-failed is no revert")
    func subscribers() {
        let kinds: [(RunEvent, NotifyHook.Event?)] = [
            (.started(run: "r", scenario: "s", traceID: nil), .start),
            (.aborted(cause: .lease, reason: "lease", probe: nil), .abort),
            (.revertFailed(fault: "f", error: "x", seconds: nil), .revertFailed),
            (.ended(run: "r", state: .succeeded, exitCode: 0, reason: nil), .end),
            (.injected(fault: "f", summary: "s", again: false), nil),
            (.note(.error, .revertFailed, "left by an earlier run", fault: "f"), nil),
        ]
        for (event, kind) in kinds { #expect(WebhookNotifier.kind(of: event) == kind, "\(event)") }
    }
}
