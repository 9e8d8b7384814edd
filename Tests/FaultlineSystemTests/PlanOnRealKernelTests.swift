import FaultlineCore
import FaultlineTestSupport
@testable import FaultlineSystem
import Testing

/// The planner's tc and iptables argv, run for real in a scratch namespace: each inject command is
/// accepted by this kernel and tools, the state is what the plan says, and the revert commands leave nothing.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces, "needs root and ip, tc, iptables, ip6tables, nsenter"))
struct PlanOnRealKernelTests {
    func scenario(netns: String) throws -> Scenario {
        try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: real-kernel-plan}
            spec:
              maxDuration: 1m
              target: {netns: \(netns)}
              faults:
                - name: slow-link
                  type: bandwidth
                  interface: eth0
                  rate: 1mbit
                  to: {hosts: [10.213.0.2, "fd00:213::2/64"], ports: [5432, 8000-8100]}
                  except: {hosts: [10.213.0.9], protocol: tcp}
                - name: flaky-db
                  type: drop
                  direction: both
                  probability: 30%
                  to: {hosts: [10.213.0.2, "fd00:213::2"], ports: [5432]}
                  except: {hosts: [10.213.0.9]}
                - name: reject-dns
                  type: drop
                  direction: egress
                  reject: true
                  to: {ports: [53]}
            """, file: "real-kernel-plan.yaml")
    }

    @Test("the agent's own namespace named by another name (its /proc path, or a netns name bound to it) keeps the API port exempt")
    func theAgentsOwnNamespaceByAnyNameKeepsItsPortExempt() async throws {
        let namespace = try await TestNamespace.create()
        do {
            // An agent inside the namespace: its own namespace is the target, by name and by a process's path.
            let agentPID = try ChildProcess.spawn(["/usr/sbin/ip", "netns", "exec", namespace.name, "/bin/sleep", "30"], table: ProcessTable())
            defer {
                _ = try? ProcessSignaller().send(.kill, to: agentPID)
                _ = ChildProcess.reap(agentPID.pid)
            }
            for _ in 0..<200 where (try? NamespacePin.identity(of: "/proc/\(agentPID.pid)/ns/net").get()) != (try? NamespacePin.identity(of: "/run/netns/\(namespace.name)").get()) {
                try await Task.sleep(for: .milliseconds(10))
            }
            for netns in [namespace.name, "/proc/\(agentPID.pid)/ns/net"] {
                let text = try ScenarioLoader.load(yaml: """
                    apiVersion: faultline/v1
                    kind: Scenario
                    metadata: {name: own-namespace}
                    spec:
                      maxDuration: 1m
                      target: {netns: \(netns)}
                      faults:
                        - {name: cut, type: drop, direction: both}
                        - {name: slow, type: bandwidth, interface: eth0, rate: 1mbit}
                    """, file: "own.yaml")
                var facts = await HostFactsReader().read(for: text, agentPort: 7465)
                // As the agent in that namespace reads it.
                facts.ownNamespace = try NamespacePin.identity(of: "/run/netns/\(namespace.name)").get()
                let plan = Planner(facts: facts).plan(text, runID: "t5t5t5t5")
                for fault in plan.faults {
                    #expect(fault.exemptions.contains { $0.reason == "the agent's API" }, "\(netns): \(fault.name) \(fault.exemptions)")
                }
                // Another namespace than the agent's has no such exemption.
                facts.ownNamespace = NamespaceIdentity(device: 0, inode: 1)
                let other = Planner(facts: facts).plan(text, runID: "t5t5t5t5")
                #expect(other.faults.allSatisfy { !$0.exemptions.contains { $0.reason == "the agent's API" } })
            }
        } catch {
            await namespace.remove()
            throw error
        }
        await namespace.remove()
    }

    @Test func planCommandsApplyAndRevertCleanly() async throws {
        let namespace = try await TestNamespace.create()
        do {
            let scenario = try scenario(netns: namespace.name)
            let facts = await HostFactsReader().read(for: scenario)
            let nsFacts = try #require(facts.namespace(.named(namespace.name)))
            #expect(nsFacts.unreadable == nil)
            #expect(nsFacts.interfaces?.contains("eth0") == true)
            #expect(nsFacts.rootQdiscs["eth0"]?.isKernelDefault == true)

            let plan = Planner(facts: facts).plan(scenario, runID: "t0t0t0t0")
            #expect(plan.problems.isEmpty, "\(plan.problems)")
            let before = try await snapshot(namespace)

            for fault in plan.faults {
                for action in fault.inject {
                    switch action {
                    case .command(let argv): try await namespace.must(argv)
                    case .batch(let argv, let input):
                        // The iptables rules as the driver applies them: one iptables-restore per family.
                        let result = try await SubprocessRunner().run(argv, input: input)
                        #expect(result.succeeded, "\(argv): \(result.standardError)")
                    case .start, .call: Issue.record("a drop or tbf plan starts no process: \(action)")
                    }
                }
            }
            #expect(plan.faults.contains { $0.inject.contains { if case .batch = $0 { true } else { false } } }, "the drop went in as a batch")
            let qdiscs = try await namespace.inside(["tc", "qdisc", "show", "dev", "eth0"]).standardOutput
            #expect(qdiscs.contains("qdisc htb fa17: root"))
            #expect(qdiscs.contains("qdisc tbf fa18: parent fa17:2"))
            let filters = try await namespace.inside(["tc", "filter", "show", "dev", "eth0"]).standardOutput
            #expect(filters.contains("flowid fa17:2"))
            #expect(filters.contains("flowid fa17:1"))
            let rules = try await namespace.inside(["iptables-save"]).standardOutput
            #expect(rules.contains("-A OUTPUT -m comment --comment \"faultline:t0t0t0t0:flaky-db\" -j FAULTLINE-t0t0t0t0-1"))
            #expect(rules.contains("-A INPUT -m comment --comment \"faultline:t0t0t0t0:flaky-db\" -j FAULTLINE-t0t0t0t0-2"))
            #expect(rules.contains("--probability 0.2999"))
            #expect(rules.contains("-j CONNMARK --set-xmark 0x1000000/0xff000000"))
            #expect(rules.contains("--reject-with tcp-reset"))
            let rules6 = try await namespace.inside(["ip6tables-save"]).standardOutput
            #expect(rules6.contains("fd00:213::2/128"))

            for fault in plan.faults.reversed() {
                for case .command(let argv) in fault.revert { try await namespace.must(argv) }
            }
            #expect(try await snapshot(namespace) == before)
            await namespace.remove()
        } catch {
            await namespace.remove()
            throw error
        }
    }

    /// netem plans, where the kernel has sch_netem; cancelled with the reason where it has not.
    @Test func netemPlanCommandsApplyAndRevertCleanly() async throws {
        let namespace = try await TestNamespace.create()
        let probe = try await namespace.runner.run(["ip", "netns", "exec", namespace.name, "tc", "qdisc", "add", "dev", "eth1", "root", "netem", "delay", "1ms"])
        guard probe.succeeded else {
            await namespace.remove()
            try Test.cancel("kernel has no sch_netem (tc said: \(probe.standardError.trimmingCharacters(in: .whitespacesAndNewlines))); netem argv is covered by the golden plans")
        }
        do {
            let scenario = try ScenarioLoader.load(yaml: """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: real-kernel-netem}
                spec:
                  maxDuration: 1m
                  target: {netns: \(namespace.name)}
                  faults:
                    - {name: slow, type: latency, interface: eth0, delay: 100ms, jitter: 10ms, correlation: 25%, distribution: normal,
                       to: {hosts: [10.213.0.2], ports: [5432]}, duration: 20s}
                    - {name: lossy, type: packet-loss, interface: eth0, percent: 30%, start: 20s, duration: 20s}
                    - {name: shuffled, type: reorder, interface: eth0, percent: 25%, gap: 5, delay: 10ms, start: 40s}
                """, file: "real-kernel-netem.yaml")
            let plan = Planner(facts: await HostFactsReader().read(for: scenario)).plan(scenario, runID: "t1t1t1t1")
            #expect(plan.problems.isEmpty, "\(plan.problems)")
            let before = try await snapshot(namespace)
            for fault in plan.faults {
                for case .command(let argv) in fault.inject { try await namespace.must(argv) }
                let qdiscs = try await namespace.inside(["tc", "qdisc", "show", "dev", "eth0"]).standardOutput
                #expect(qdiscs.contains("qdisc netem fa18: parent fa17:2"))
                for case .command(let argv) in fault.revert { try await namespace.must(argv) }
                #expect(try await snapshot(namespace) == before)
            }
            await namespace.remove()
        } catch {
            await namespace.remove()
            throw error
        }
    }

    /// Root qdisc, filters and rules: what must be the same before and after.
    func snapshot(_ namespace: TestNamespace) async throws -> [String] {
        [
            try await namespace.inside(["tc", "qdisc", "show", "dev", "eth0"]).standardOutput,
            try await namespace.inside(["tc", "filter", "show", "dev", "eth0"]).standardOutput,
            try await namespace.inside(["iptables", "-S"]).standardOutput,
            try await namespace.inside(["ip6tables", "-S"]).standardOutput,
        ]
    }
}
