import FaultlineCore
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
}
