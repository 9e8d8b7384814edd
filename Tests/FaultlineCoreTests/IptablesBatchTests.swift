@testable import FaultlineCore
import Foundation
import Testing

/// A fault's iptables commands as one iptables-restore batch per namespace, tool and table: exactly the same rules,
/// in the same order, one process; what cannot be written in a restore file stays a command.
@Suite struct IptablesBatchTests {
    static func plan(_ fault: String) throws -> PlannedFault {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: batch}
            spec:
              maxDuration: 5m
              target: {netns: app}
              faults:
                - \(fault)
            """, file: "batch.yaml")
        var facts = HostFacts()
        facts.netemAvailable = false
        facts.nfqueueAvailable = true
        facts.executable = "/usr/local/bin/faultline"
        facts.namespaces = [NamespaceFacts(target: nil), NamespaceFacts(target: try NetnsTarget(netns: "app"), interfaces: ["lo", "eth0"])]
        let plan = Planner(facts: facts).plan(scenario, runID: "b4b4b4b4")
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        return try #require(plan.faults.first)
    }

    @Test("a drop both ways, IPv4 and IPv6: one iptables-restore and one ip6tables-restore, each with both chains and their hooks")
    func aDropIsOneBatchPerFamily() throws {
        let fault = try Self.plan("{name: cut, type: drop, to: {ports: [5432], protocol: tcp}}")
        #expect(fault.inject.count == 2)
        guard case .batch(let argv, let input) = fault.inject[0] else { Issue.record("not a batch: \(fault.inject[0])"); return }
        #expect(argv == ["nsenter", "--net=/run/netns/app", "--", "iptables-restore", "-w", "5", "--noflush"])
        let lines = input.split(separator: "\n").map(String.init)
        #expect(lines.first == "*filter" && lines.last == "COMMIT")
        #expect(lines.contains("-N FAULTLINE-b4b4b4b4-1") && lines.contains("-N FAULTLINE-b4b4b4b4-2"))
        #expect(lines.contains("-A FAULTLINE-b4b4b4b4-1 -p tcp --dport 5432 -m comment --comment faultline:b4b4b4b4:cut -j DROP"), "\(lines)")
        #expect(lines.contains("-I OUTPUT 1 -m comment --comment faultline:b4b4b4b4:cut -j FAULTLINE-b4b4b4b4-1"))
        #expect(lines.contains("-I INPUT 1 -m comment --comment faultline:b4b4b4b4:cut -j FAULTLINE-b4b4b4b4-2"))
        // Each chain is made and filled before the hook that sends packets to it.
        #expect(lines.firstIndex(of: "-N FAULTLINE-b4b4b4b4-1")! < lines.firstIndex(of: "-I OUTPUT 1 -m comment --comment faultline:b4b4b4b4:cut -j FAULTLINE-b4b4b4b4-1")!)
        guard case .batch(let argv6, _) = fault.inject[1] else { Issue.record("not a batch: \(fault.inject[1])"); return }
        #expect(argv6.contains("ip6tables-restore"))
        // The revert stays rule by rule in the plan and the journal; it runs as batches (NetworkDriverUnitTests).
        #expect(fault.revert.allSatisfy { if case .command = $0 { true } else { false } })
        let steps = IptablesBatch.revertSteps(fault.revert.compactMap { if case .command(let a) = $0 { a } else { nil } })
        #expect(steps.count == 2 && steps.allSatisfy { $0.batch != nil })
        #expect(steps[0].batch?.input == "*filter\n-D OUTPUT -m comment --comment faultline:b4b4b4b4:cut -j FAULTLINE-b4b4b4b4-1\n-F FAULTLINE-b4b4b4b4-1\n-X FAULTLINE-b4b4b4b4-1\n-D INPUT -m comment --comment faultline:b4b4b4b4:cut -j FAULTLINE-b4b4b4b4-2\n-F FAULTLINE-b4b4b4b4-2\n-X FAULTLINE-b4b4b4b4-2\nCOMMIT\n")
    }

    @Test("the batch stands for exactly the commands it replaces, in their order (mangle table named, filter not)")
    func aBatchIsExactlyItsCommands() throws {
        for fault in ["{name: cut, type: drop, probability: 30%, to: {hosts: [10.0.0.5, 'fd00::5']}}",
                      "{name: slow, type: latency, interface: eth0, delay: 50ms, to: {hosts: [10.0.0.5], ports: [5432]}}"] {
            let planned = try Self.plan(fault)
            for case .batch(let argv, let input) in planned.inject {
                let commands = IptablesBatch.expand(argv, input: input)
                #expect(IptablesBatch.batches(commands).map { PlanAction.batch($0.argv, input: $0.input) } == [.batch(argv, input: input)])
                #expect(commands.allSatisfy { IptablesBatch.parse($0) != nil })
            }
        }
        let delayer = try Self.plan("{name: slow, type: latency, interface: eth0, delay: 50ms}")
        guard case .start = delayer.inject[0], case .batch(_, let input) = delayer.inject[1] else { Issue.record("\(delayer.inject)"); return }
        #expect(input.hasPrefix("*mangle\n-N FAULTLINE-b4b4b4b4-1\n"), "the delayer starts first, then its chain goes in at once: \(input)")
    }

    @Test("what a restore file cannot hold stays a command: an argument with a space or a quote, a listing, a lone rule")
    func whatIsNotBatched() {
        let spaced = ["iptables", "-w", "5", "-A", "X", "-m", "comment", "--comment", "two words", "-j", "DROP"]
        #expect(IptablesBatch.parse(spaced) == nil)
        #expect(IptablesBatch.parse(["iptables", "-w", "5", "-L", "X"]) == nil)
        #expect(IptablesBatch.parse(["tc", "qdisc", "show"]) == nil)
        let lone: [PlanAction] = [.command(["iptables", "-w", "5", "-N", "X"]), .command(["tc", "qdisc", "show"])]
        #expect(IptablesBatch.grouped(lone) == lone)
        let split: [PlanAction] = [.command(["iptables", "-w", "5", "-N", "X"]), .command(spaced), .command(["iptables", "-w", "5", "-X", "X"])]
        #expect(IptablesBatch.grouped(split) == split, "a command that cannot be batched keeps the order around it")
    }
}
