import FaultlineCore
import FaultlineEngine
import FaultlineProbes
import Testing

/// The abort conditions and the SLO verdict, judged on probe results as they come (no root, no processes).
@Suite struct ProbeLedgerTests {
    /// A scenario's steady state with two http probes (`web`, `api`) and the given slo and abortWhen lines.
    static func ledger(_ lines: String) throws -> (ProbeLedger, web: Probe, api: Probe) {
        let yaml = """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: ledger}
            spec:
              maxDuration: 5m
              steadyState:
                probes:
                  - {name: web, http: {url: "http://127.0.0.1:8080/"}, interval: 1s}
                  - {name: api, http: {url: "http://127.0.0.1:8081/"}, interval: 1s}
            \(lines)
              faults:
                - {name: freeze, type: pause-process, duration: 10s, match: {name: ledger-test-target}}
            """
        let steadyState = try #require(try ScenarioLoader.load(yaml: yaml, file: "ledger.yaml").spec.steadyState)
        return (ProbeLedger(steadyState: steadyState), steadyState.probes[0], steadyState.probes[1])
    }

    static let ok = ProbeOutcome(ok: true, latency: 0.010, detail: "status 200", status: 200)
    static let failed = ProbeOutcome(ok: false, latency: 1.0, detail: "timeout")

    @Test("consecutive failures count per probe, reset by a good result, and only during the method")
    func consecutiveFailures() throws {
        let (ledger, web, api) = try Self.ledger("    abortWhen: {consecutiveFailures: 3}")
        for second in 0..<5 { #expect(ledger.record(web, Self.failed, phase: .before, at: Double(second)) == nil, "before the method: never an abort") }
        #expect(ledger.record(web, Self.failed, phase: .method, at: 10) == nil)
        #expect(ledger.record(web, Self.failed, phase: .method, at: 11) == nil)
        #expect(ledger.record(api, Self.failed, phase: .method, at: 11.5) == nil, "another probe's failure is its own count")
        #expect(ledger.record(web, Self.ok, phase: .method, at: 12) == nil)
        #expect(ledger.record(web, Self.failed, phase: .method, at: 13) == nil)
        #expect(ledger.record(web, Self.failed, phase: .method, at: 14) == nil)
        #expect(ledger.record(web, Self.failed, phase: .method, at: 15) == "probe 'web' failed 3 times in a row (timeout)")
        #expect(ledger.samples.count == 12)
    }

    @Test("a result that passed but was slower than the slo's latency is bad, and the abort says why")
    func slowIsBad() throws {
        let (ledger, web, _) = try Self.ledger("    slo: {objective: 99%, latency: 200ms}\n    abortWhen: {consecutiveFailures: 2}")
        let slow = ProbeOutcome(ok: true, latency: 0.350, detail: "status 200", status: 200)
        #expect(ledger.record(web, slow, phase: .method, at: 1) == nil)
        #expect(ledger.record(web, slow, phase: .method, at: 2) == "probe 'web' failed 2 times in a row (status 200 in 350ms, slower than the slo's 200ms)")
        #expect(ledger.samples.allSatisfy { $0.ok && !$0.good })
    }

    @Test("burn rate: more bad results in the window than factor × (1 − objective) allows aborts; old results leave the window")
    func burnRate() throws {
        // 90% objective, factor 2: more than 20% bad within the last 10 s aborts.
        let (ledger, web, _) = try Self.ledger("    slo: {objective: 90%}\n    abortWhen: {burnRate: {factor: 2, window: 10s}}")
        // Old failures, 30 s ago, are outside the window by the time it matters.
        for second in 0..<3 { _ = ledger.record(web, Self.failed, phase: .method, at: Double(second)) }
        for second in 20..<28 { #expect(ledger.record(web, Self.ok, phase: .method, at: Double(second)) == nil) }
        // One bad in nine within the window: 11%, under 20%.
        #expect(ledger.record(web, Self.failed, phase: .method, at: 28) == nil)
        // Two bad in ten: 20%, exactly the limit, not over it (before, 1 − 90% in binary floating point made it abort).
        #expect(ledger.record(web, Self.failed, phase: .method, at: 28.5) == nil)
        // Three bad in eleven: 27%, over it.
        #expect(ledger.record(web, Self.failed, phase: .method, at: 29) == "error budget burning too fast: 27% bad in the last 10s (limit 20%, probe 'web')")
    }

    @Test("the SLO verdict counts the method's results only; no result is a met objective with no budget used")
    func verdict() throws {
        let (ledger, web, api) = try Self.ledger("    slo: {objective: 90%}")
        let empty = try #require(ledger.verdict())
        #expect(empty.total == 0 && empty.met && empty.budgetUsed == 0)
        _ = ledger.record(web, Self.failed, phase: .before, at: 0)
        for index in 0..<18 { _ = ledger.record(index % 2 == 0 ? web : api, Self.ok, phase: .method, at: Double(index + 1)) }
        _ = ledger.record(web, Self.failed, phase: .method, at: 20)
        _ = ledger.record(api, Self.failed, phase: .method, at: 21)
        _ = ledger.record(web, Self.failed, phase: .after, at: 30)
        let verdict = try #require(ledger.verdict())
        #expect(verdict.total == 20 && verdict.good == 18)
        #expect(verdict.met, "18 of 20 good is 90%: met")
        #expect(abs(verdict.budgetUsed - 1.0) < 1e-9, "all of the 10% budget used")
        _ = ledger.record(api, Self.failed, phase: .method, at: 22)
        #expect(try #require(ledger.verdict()).met == false)
    }

    @Test("without an slo there is no verdict, and without abortWhen no abort")
    func nothingAsked() throws {
        let (ledger, web, _) = try Self.ledger("")
        for second in 0..<50 { #expect(ledger.record(web, Self.failed, phase: .method, at: Double(second)) == nil) }
        #expect(ledger.verdict() == nil)
    }
}
