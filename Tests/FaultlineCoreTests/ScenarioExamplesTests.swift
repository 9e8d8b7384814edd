@testable import FaultlineCore
import Foundation
import Testing
import Yams

/// Every scenario in `scenarios/` validates, survives a round trip, and plans exactly as its golden file says.
@Suite struct ScenarioExamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let examples = root.appendingPathComponent("scenarios")
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/golden")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: examples.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
    }

    static func load(_ name: String) throws -> Scenario {
        let text = try String(contentsOf: examples.appendingPathComponent(name), encoding: .utf8)
        return try ScenarioLoader.load(yaml: text, file: "scenarios/\(name)")
    }

    @Test func thereAreAtLeastEightExamples() {
        #expect(Self.files.count >= 8)
    }

    @Test func examplesTogetherUseEveryFaultAndProbeTypeAndTargetForm() throws {
        let scenarios = try Self.files.map(Self.load)
        let faults = scenarios.flatMap(\.spec.faults)
        #expect(Set(faults.map(\.type)) == Set(FaultType.allCases))
        let probes = scenarios.compactMap(\.spec.steadyState).flatMap(\.probes)
        #expect(Set(probes.map(\.check.kind)) == ["http", "tcp", "command", "prometheus"])
        let targets = scenarios.compactMap(\.spec.target) + faults.compactMap(\.target)
        #expect(targets.contains { if case .named = $0 { true } else { false } })
        #expect(targets.contains { if case .path = $0 { true } else { false } })
        #expect(targets.contains { if case .pid = $0 { true } else { false } })
        #expect(scenarios.contains { $0.spec.steadyState?.slo != nil })
        #expect(scenarios.contains { $0.spec.steadyState?.abortWhen?.burnRate != nil })
        #expect(scenarios.contains { $0.spec.steadyState?.abortWhen?.consecutiveFailures != nil })
    }

    @Test(arguments: files)
    func roundTrip(_ name: String) throws {
        let scenario = try Self.load(name)
        let yaml = try YAMLEncoder().encode(scenario)
        let again = try ScenarioLoader.load(yaml: yaml, file: "encoded-\(name)")
        #expect(again == scenario)
        let json = String(decoding: try JSONEncoder().encode(scenario), as: UTF8.self)
        #expect(try ScenarioLoader.load(yaml: json, file: "encoded-\(name).json") == scenario)
    }

    /// Facts of a well-known host: netem present, agent on 7465, SSH on 22, every target with lo, eth0, eth1.
    static func facts(for scenario: Scenario) -> HostFacts {
        var facts = HostFacts()
        facts.agentPort = 7465
        facts.netemAvailable = true
        facts.cpuCount = 2
        facts.executable = "/usr/local/bin/faultline"
        let targets = [nil] + scenario.spec.faults.map { $0.target ?? scenario.spec.target }
        for target in targets where facts.namespace(target) == nil {
            facts.namespaces.append(NamespaceFacts(target: target, interfaces: ["lo", "eth0", "eth1", "flt-demo-c"],
                                                   rootQdiscs: ["lo": RootQdisc(kind: "noqueue", handle: "0:"),
                                                                "eth0": RootQdisc(kind: "fq_codel", handle: "0:"),
                                                                "eth1": RootQdisc(kind: "pfifo", handle: "8001:", restoreArguments: ["pfifo", "limit", "1000"])]))
        }
        for fault in scenario.spec.faults {
            for case .name(let name) in fault.action.filters.flatMap({ $0.hosts ?? [] }) {
                facts.resolvedHosts[name] = .addresses([IPNetwork("192.0.2.53")!, IPNetwork("2001:db8::53")!])
            }
        }
        return facts
    }

    @Test(arguments: files)
    func planMatchesGoldenFile(_ name: String) throws {
        let scenario = try Self.load(name)
        let plan = Planner(facts: Self.facts(for: scenario)).plan(scenario, runID: "3f2a9c1d")
        #expect(plan.problems.isEmpty, "unexpected problems: \(plan.problems)")
        let text = PlanRenderer.text(plan)
        let url = Self.golden.appendingPathComponent(name.replacingOccurrences(of: ".yaml", with: ".plan.txt"))
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(text == expected, "plan of \(name) differs from \(url.lastPathComponent); rerun with UPDATE_GOLDEN=1 after checking the change")
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(try PlanRenderer.json(plan).utf8))
        #expect(decoded == plan)
    }

    // That docs/scenario-format.md documents every key: ScenarioReferenceTests.keysAndDocsAgree.
}
