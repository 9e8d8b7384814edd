@testable import FaultlineCore
import Foundation
import Testing

/// The nfqueue engine in plans: which engine a fault gets and why, and the exact commands.
@Suite struct NFQueuePlanTests {
    static func plan(_ faults: String, netem: Bool?, nfqueue: Bool? = true, target: Bool = true, runID: String = "3f2a9c1d") throws -> Plan {
        let yaml = """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: nfq}
            spec:
              maxDuration: 5m
            \(target ? "  target: {netns: app}\n" : "")  faults:
            \(faults)
            """
        let scenario = try ScenarioLoader.load(yaml: yaml, file: "nfq.yaml")
        var facts = HostFacts()
        facts.agentPort = 7465
        facts.netemAvailable = netem
        facts.nfqueueAvailable = nfqueue
        facts.executable = "/usr/local/bin/faultline"
        for namespace in [nil, try NetnsTarget(netns: "app")] {
            facts.namespaces.append(NamespaceFacts(target: namespace, interfaces: ["lo", "eth0"], rootQdiscs: ["eth0": RootQdisc(kind: "noqueue", handle: "0:")]))
        }
        return Planner(facts: facts).plan(scenario, runID: runID)
    }

    /// Every command of `actions`, a batch as the commands it stands for (IptablesBatchTests checks the batches).
    static func argv(_ actions: [PlanAction]) -> [[String]] {
        actions.flatMap { action -> [[String]] in
            switch action {
            case .command(let argv): [argv]
            case .batch(let argv, let input): IptablesBatch.expand(argv, input: input)
            case .start(let argv, _): [["START"] + argv]
            case .call: []
            }
        }
    }

    static func queue(_ argv: [String]) -> String {
        argv.firstIndex(of: "--queue").map { argv[$0 + 1] } ?? ""
    }

    @Test func latencyWithoutNetemGetsTheDelayerAndItsExactRules() throws {
        let plan = try Self.plan("""
                - {name: slow-db, type: latency, interface: eth0, delay: 100ms, jitter: 10ms, correlation: 25%, distribution: normal,
                   to: {hosts: [10.0.0.0/28], ports: [5432], protocol: tcp}, except: {hosts: [10.0.0.6]}}
            """, netem: false)
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        #expect(plan.notes.contains("engine auto: 'slow-db' uses the userspace nfqueue delayer because the kernel has no sch_netem"))
        let fault = try #require(plan.faults.first)
        let queue = fault.mechanism.split(separator: " ").last.map { String($0.dropLast()) } ?? ""
        #expect(fault.mechanism == "nfqueue (userspace delayer, queue \(queue))")
        #expect((0xFA00...0xFAFF).contains(Int(queue) ?? 0))
        let ns = ["nsenter", "--net=/run/netns/app", "--"]
        let ipt = ns + ["iptables", "-w", "5", "-t", "mangle"]
        let chain = "FAULTLINE-3f2a9c1d-1"
        let comment = ["-m", "comment", "--comment", "faultline:3f2a9c1d:slow-db"]
        #expect(Self.argv(fault.inject) == [
            ["START"] + ns + ["/usr/local/bin/faultline", "delayer", "--queue", queue, "--limit", "10000", "--interface", "eth0",
                              "--delay", "100ms", "--jitter", "10ms", "--correlation", "25", "--distribution", "normal"],
            ipt + ["-N", chain],
            ipt + ["-A", chain, "-m", "mark", "--mark", "0xfa17fa17"] + comment + ["-j", "RETURN"],
            ipt + ["-A", chain, "-p", "tcp", "--sport", "22"] + comment + ["-j", "RETURN"],
            ipt + ["-A", chain, "-p", "tcp", "--dport", "22"] + comment + ["-j", "RETURN"],
            ipt + ["-A", chain, "-d", "10.0.0.6/32"] + comment + ["-j", "RETURN"],
            ipt + ["-A", chain, "-p", "tcp", "-d", "10.0.0.0/28", "--dport", "5432"] + comment + ["-j", "NFQUEUE", "--queue-num", queue, "--queue-bypass"],
            ipt + ["-I", "POSTROUTING", "1", "-o", "eth0"] + comment + ["-j", chain],
        ], "IPv4 hosts only: no ip6tables rules")
        #expect(Self.argv(fault.revert) == [
            ipt + ["-D", "POSTROUTING", "-o", "eth0"] + comment + ["-j", chain],
            ipt + ["-F", chain],
            ipt + ["-X", chain],
        ])
        #expect(fault.revert.last == .call(.stop(started: .delayer, grace: .seconds(5))))
        #expect(PlanRenderer.line(fault.revert.last!) == "(faultline) SIGTERM to the delayer: it lets every packet it holds go at once and exits; SIGKILL after 5s")
        #expect(fault.checks == [.chain(namespace: "/run/netns/app", tool: "iptables", chain: chain, table: "mangle")])
        let decoded = try JSONDecoder().decode(Plan.self, from: Data(try PlanRenderer.json(plan).utf8))
        #expect(decoded == plan)
        #expect(PlanRenderer.text(plan).contains("delayer --queue \(queue) --limit 10000 --interface eth0 --delay 100ms --jitter 10ms --correlation 25 --distribution normal &   (runs until the revert)"))
    }

    @Test func packetLossInTheAgentsNamespaceExemptsTheAgentAndCoversBothFamilies() throws {
        let plan = try Self.plan("""
                - {name: lossy, type: packet-loss, interface: eth0, percent: 30%, correlation: 10%, engine: nfqueue}
            """, netem: true, target: false)
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        #expect(plan.notes.contains("'lossy' uses the userspace nfqueue delayer: the scenario asks for engine: nfqueue"))
        let fault = try #require(plan.faults.first)
        let commands = Self.argv(fault.inject)
        let queue = Self.queue(commands[0])
        #expect(commands[0].dropFirst(5).prefix(6) == ["--limit", "10000", "--interface", "eth0", "--loss", "30"])
        #expect(commands[0].suffix(2) == ["--loss-correlation", "10"])
        #expect(commands[0][1] == "/usr/local/bin/faultline", "no nsenter in the agent's own namespace")
        for tool in ["iptables", "ip6tables"] {
            let own = commands.filter { $0.first == tool }
            #expect(own.contains { $0.contains("--sport") && $0.contains("7465") }, "the agent's port is exempt (\(tool))")
            #expect(own.contains { $0.suffix(4) == ["NFQUEUE", "--queue-num", queue, "--queue-bypass"] && !$0.contains("-d") })
        }
        #expect(fault.checks.count == 2)
        #expect(fault.exemptions.map(\.reason) == ["the agent's API", "SSH sessions"])
    }

    struct Choice: Sendable, CustomStringConvertible {
        var fault: String
        var netem: Bool?
        var nfqueue: Bool?
        var mechanism: String
        var problem: String?
        var description: String { "\(fault) netem=\(String(describing: netem)) nfqueue=\(String(describing: nfqueue))" }
    }

    static let choices: [Choice] = [
        Choice(fault: "{name: f, type: latency, interface: eth0, delay: 10ms}", netem: true, nfqueue: true, mechanism: "tc netem"),
        Choice(fault: "{name: f, type: latency, interface: eth0, delay: 10ms}", netem: false, nfqueue: true, mechanism: "nfqueue"),
        Choice(fault: "{name: f, type: latency, interface: eth0, delay: 10ms}", netem: false, nfqueue: nil, mechanism: "nfqueue"),
        Choice(fault: "{name: f, type: latency, interface: eth0, delay: 10ms}", netem: nil, nfqueue: true, mechanism: "tc netem"),
        Choice(fault: "{name: f, type: latency, interface: eth0, delay: 10ms}", netem: false, nfqueue: false, mechanism: "nfqueue",
               problem: "fault 'f': the kernel has no sch_netem and the kernel cannot queue packets to userspace (needs nfnetlink_queue and the iptables NFQUEUE target: modprobe nfnetlink_queue xt_NFQUEUE): neither engine can run here"),
        Choice(fault: "{name: f, type: latency, interface: eth0, delay: 10ms, engine: netem}", netem: false, nfqueue: true, mechanism: "tc netem",
               problem: "fault 'f': the kernel has no sch_netem, which engine: netem needs; use engine: nfqueue or auto (the userspace delayer)"),
        Choice(fault: "{name: f, type: latency, interface: eth0, delay: 10ms, engine: nfqueue}", netem: true, nfqueue: true, mechanism: "nfqueue"),
        Choice(fault: "{name: f, type: packet-loss, interface: eth0, percent: 5%, engine: nfqueue}", netem: true, nfqueue: false, mechanism: "nfqueue",
               problem: "fault 'f': the kernel cannot queue packets to userspace (needs nfnetlink_queue and the iptables NFQUEUE target: modprobe nfnetlink_queue xt_NFQUEUE), which engine: nfqueue needs"),
        Choice(fault: "{name: f, type: packet-loss, interface: eth0, percent: 5%}", netem: false, nfqueue: true, mechanism: "nfqueue"),
        Choice(fault: "{name: f, type: corrupt, interface: eth0, percent: 1%}", netem: false, nfqueue: true, mechanism: "nfqueue"),
        Choice(fault: "{name: f, type: corrupt, interface: eth0, percent: 1%}", netem: true, nfqueue: true, mechanism: "tc netem"),
        Choice(fault: "{name: f, type: duplicate, interface: eth0, percent: 5%}", netem: false, nfqueue: true, mechanism: "nfqueue"),
        Choice(fault: "{name: f, type: duplicate, interface: eth0, percent: 5%}", netem: true, nfqueue: true, mechanism: "tc netem"),
        Choice(fault: "{name: f, type: reorder, interface: eth0, percent: 5%, delay: 10ms}", netem: false, nfqueue: true, mechanism: "nfqueue"),
        Choice(fault: "{name: f, type: reorder, interface: eth0, percent: 5%, delay: 10ms}", netem: false, nfqueue: false, mechanism: "nfqueue",
               problem: "fault 'f': the kernel has no sch_netem and the kernel cannot queue packets to userspace (needs nfnetlink_queue and the iptables NFQUEUE target: modprobe nfnetlink_queue xt_NFQUEUE): neither engine can run here"),
        Choice(fault: "{name: f, type: bandwidth, interface: eth0, rate: 1mbit}", netem: false, nfqueue: false, mechanism: "tc tbf"),
    ]

    @Test(arguments: choices)
    func theEngineFollowsTheKernelAndTheScenario(_ choice: Choice) throws {
        let plan = try Self.plan("    - \(choice.fault)", netem: choice.netem, nfqueue: choice.nfqueue)
        #expect(plan.faults.first?.mechanism.hasPrefix(choice.mechanism) == true, "\(plan.faults.first?.mechanism ?? "")")
        #expect(plan.problems.map(\.description) == (choice.problem.map { [$0] } ?? []))
    }

    @Test func duplicateWithoutNetemAsksTheDelayerForCopies() throws {
        let plan = try Self.plan("    - {name: twice, type: duplicate, interface: eth0, percent: 20%, correlation: 5%}", netem: false)
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        let start = try #require(Self.argv(plan.faults[0].inject).first)
        #expect(start.suffix(8) == ["--limit", "10000", "--interface", "eth0", "--duplicate", "20", "--duplicate-correlation", "5"])
    }

    @Test func faultsSideBySideGetTheirOwnQueueAndChain() throws {
        let faults = """
                - {name: a, type: latency, interface: eth0, delay: 10ms, duration: 1m}
                - {name: b, type: packet-loss, interface: lo, percent: 1%}
            """
        let plan = try Self.plan(faults, netem: false)
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        let queues = plan.faults.map { Self.queue(Self.argv($0.inject)[0]) }
        #expect(queues[0] != queues[1], "queue numbers differ: \(queues)")
        let chains = plan.faults.map { Self.argv($0.inject)[1].last }
        #expect(chains == ["FAULTLINE-3f2a9c1d-1", "FAULTLINE-3f2a9c1d-2"])
        let other = try Self.plan(faults, netem: false, runID: "77aa0b12")
        #expect(Self.queue(Self.argv(other.faults[0].inject)[0]) != queues[0], "another run gets other queues")
    }
}
