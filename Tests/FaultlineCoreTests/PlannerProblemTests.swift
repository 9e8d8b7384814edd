import FaultlineCore
import Foundation
import Testing

/// Problems the planner reports: each once, and only what is really wrong.
@Suite struct PlannerProblemTests {
    @Test("a host that does not resolve is one problem, not also a 'no address family' mismatch")
    func anUnresolvedHostIsOneProblem() throws {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: unresolved}
            spec:
              maxDuration: 1m
              faults:
                - {name: cut, type: drop, to: {hosts: [db.nowhere.invalid]}, from: {hosts: [10.0.0.5]}}
            """, file: "unresolved.yaml")
        var facts = HostFacts()
        facts.resolvedHosts["db.nowhere.invalid"] = .failed("Name or service not known")
        let plan = Planner(facts: facts).plan(scenario, runID: "t7t7t7t7")
        #expect(plan.problems.map(\.message) == ["host 'db.nowhere.invalid' did not resolve: Name or service not known"], "\(plan.problems)")
    }

    /// A scenario with one drop in netns `app`, whose facts say it listens on 8080 and has address 10.213.1.2.
    static func lint(_ fault: String) throws -> Plan {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: lint}
            spec:
              maxDuration: 1m
              target: {netns: app}
              faults:
                - \(fault)
            """, file: "lint.yaml")
        var namespace = NamespaceFacts(target: scenario.spec.target, interfaces: ["lo", "eth0"])
        namespace.listeningPorts = [22, 8080]
        namespace.addresses = ["127.0.0.1", "10.213.1.2"]
        var facts = HostFacts()
        facts.namespaces = [namespace]
        return Planner(facts: facts).plan(scenario, runID: "l1l1l1l1")
    }

    @Test("plan-time lint from the target's facts: an ingress drop whose 'to' names a port the target listens on, a 'from' port nothing listens on, a 'to' host that is the target's own address; none for what is right")
    func filtersThatCannotMatchAreWarned() throws {
        let swapped = try Self.lint("{name: cut, type: drop, direction: ingress, to: {ports: [8080], protocol: tcp}}")
        #expect(swapped.problems.isEmpty)
        #expect(swapped.warnings.map(\.fault) == ["cut"])
        #expect(swapped.warnings.first?.message.contains("did you mean 'from: {ports: [8080]}'?") == true, "\(swapped.warnings)")
        #expect(PlanRenderer.text(swapped).contains("Warnings (the run would start, but check these):\n  - "), "\(PlanRenderer.text(swapped))")
        let json = try JSONSerialization.jsonObject(with: Data(PlanRenderer.json(swapped).utf8)) as? [String: Any]
        #expect((json?["warnings"] as? [[String: Any]])?.first?["fault"] as? String == "cut", "\(json ?? [:])")

        let nobody = try Self.lint("{name: cut, type: drop, direction: ingress, from: {ports: [9999], protocol: tcp}}")
        #expect(nobody.warnings.first?.message.contains("no socket in netns app listens on port 9999") == true, "\(nobody.warnings)")

        let own = try Self.lint("{name: cut, type: drop, direction: egress, to: {hosts: [10.213.1.2]}}")
        #expect(own.warnings.first?.message.contains("10.213.1.2 is an address of netns app itself") == true, "\(own.warnings)")

        for right in ["{name: cut, type: drop, direction: ingress, from: {ports: [8080], protocol: tcp}}",
                      "{name: cut, type: drop, direction: egress, to: {hosts: [10.213.1.9], ports: [5432]}}",
                      "{name: cut, type: drop, direction: egress, to: {ports: [8080]}}"] {
            #expect(try Self.lint(right).warnings.isEmpty, "\(right)")
        }
    }
}

/// `steadyState.recoveryWindow`: a duration, with probes, at most an hour.
@Suite struct RecoveryWindowDecodingTests {
    static func load(_ steadyState: String) throws -> Scenario {
        try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: recovery}
            spec:
              maxDuration: 1m
              steadyState:
            \(steadyState)
              faults:
                - {name: burn, type: cpu-stress, duration: 10s}
            """, file: "recovery.yaml")
    }

    @Test("recoveryWindow is read; without probes, too long or not a duration it is an error that says where")
    func decoded() throws {
        let scenario = try Self.load("    probes: [{name: web, tcp: {address: \"127.0.0.1:80\"}}]\n    recoveryWindow: 30s")
        #expect(scenario.spec.steadyState?.recoveryWindow == .seconds(30))
        for (text, message) in [("    recoveryWindow: 30s", "recoveryWindow needs at least one probe"),
                                ("    probes: [{name: web, tcp: {address: \"127.0.0.1:80\"}}]\n    recoveryWindow: 2h", "recoveryWindow 2h is longer than 1h"),
                                ("    probes: [{name: web, tcp: {address: \"127.0.0.1:80\"}}]\n    recoveryWindow: soon", "recovery.yaml:")] {
            #expect(throws: (any Error).self) { try Self.load(text) }
            do { _ = try Self.load(text) } catch { #expect("\(error)".contains(message), "\(error)") }
        }
    }
}
