@testable import FaultlineCore
import Foundation
import Testing

/// `from` (the local end) and `direction: ingress` for the tc faults: the exact commands with both engines, the
/// format's errors, and the plan's problems and warnings from the target's facts.
@Suite struct ShapingDirectionTests {
    static let ns = ["nsenter", "--net=/run/netns/app", "--"]

    static func plan(_ faults: String, netem: Bool? = true, ingressQdiscs: [String: String]? = [:], listening: [UInt16]? = nil) throws -> Plan {
        let yaml = """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: shaping}
            spec:
              maxDuration: 5m
              target: {netns: app}
              faults:
            \(faults)
            """
        let scenario = try ScenarioLoader.load(yaml: yaml, file: "shaping.yaml")
        var facts = HostFacts()
        facts.netemAvailable = netem
        facts.nfqueueAvailable = true
        facts.executable = "/usr/local/bin/faultline"
        var app = NamespaceFacts(target: try NetnsTarget(netns: "app"), interfaces: ["lo", "eth0"],
                                 rootQdiscs: ["eth0": RootQdisc(kind: "noqueue", handle: "0:")])
        app.ingressQdiscs = ingressQdiscs
        app.listeningPorts = listening
        facts.namespaces = [NamespaceFacts(target: nil, interfaces: ["lo", "eth0"]), app]
        return Planner(facts: facts).plan(scenario, runID: "5e7d0c1a")
    }

    static func tc(_ arguments: String) -> [String] { ns + ["tc"] + arguments.split(separator: " ").map(String.init) }

    @Test("ingress latency with netem: an ifb device carries the tree, the interface's ingress redirects to it; to is the source, from the destination")
    func ingressNetemRedirectsToAnIFB() throws {
        let plan = try Self.plan("""
                - {name: slow-requests, type: latency, interface: eth0, delay: 80ms, direction: ingress,
                   to: {hosts: [10.213.0.1]}, from: {ports: [8080], protocol: tcp}}
            """)
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        let fault = try #require(plan.faults.first)
        #expect(fault.mechanism == "tc netem on an ifb device (ingress)")
        #expect(fault.summary == "delay 80ms on eth0 ingress from remote hosts 10.213.0.1 to local ports 8080 tcp")
        let ifb = "flt5e7d0c1ai1"
        #expect(NFQueuePlanTests.argv(fault.inject) == [
            Self.ns + ["ip", "link", "add", ifb, "type", "ifb"],
            Self.ns + ["ip", "link", "set", "dev", ifb, "up"],
            Self.tc("qdisc replace dev \(ifb) root handle fa17: htb default 1"),
            Self.tc("class add dev \(ifb) parent fa17: classid fa17:1 htb rate 100gbit"),
            Self.tc("class add dev \(ifb) parent fa17: classid fa17:2 htb rate 100gbit"),
            Self.tc("qdisc add dev \(ifb) parent fa17:2 handle fa18: netem delay 80ms"),
            Self.tc("filter add dev \(ifb) parent fa17: protocol ip prio 1 u32 match ip protocol 6 0xff match ip sport 22 0xffff flowid fa17:1"),
            Self.tc("filter add dev \(ifb) parent fa17: protocol ipv6 prio 2 u32 match ip6 protocol 6 0xff match ip6 sport 22 0xffff flowid fa17:1"),
            Self.tc("filter add dev \(ifb) parent fa17: protocol ip prio 1 u32 match ip protocol 6 0xff match ip dport 22 0xffff flowid fa17:1"),
            Self.tc("filter add dev \(ifb) parent fa17: protocol ipv6 prio 2 u32 match ip6 protocol 6 0xff match ip6 dport 22 0xffff flowid fa17:1"),
            Self.tc("filter add dev \(ifb) parent fa17: protocol ip prio 5 u32 match ip src 10.213.0.1/32 match ip protocol 6 0xff match ip dport 8080 0xffff flowid fa17:2"),
            Self.tc("qdisc add dev eth0 handle ffff: ingress"),
            Self.tc("filter add dev eth0 parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev \(ifb)"),
        ])
        #expect(NFQueuePlanTests.argv(fault.revert) == [Self.tc("qdisc del dev eth0 handle ffff: ingress"), Self.ns + ["ip", "link", "del", ifb]])
        #expect(fault.checks == [.ingress(namespace: "/run/netns/app", device: "eth0", ifb: ifb)])
        #expect(ResourceClaims.of(.commands(revert: [], checks: fault.checks)) == ["interface eth0 ingress in /run/netns/app"])
    }

    @Test("egress with from: the service's own port is the source port; bandwidth and netem alike; both directions of one interface may overlap")
    func fromIsTheLocalEndOnEgress() throws {
        let plan = try Self.plan("""
                - {name: slow-answers, type: bandwidth, interface: eth0, rate: 1mbit, from: {hosts: [10.213.0.2], ports: [8080]}}
                - {name: lossy-in, type: packet-loss, interface: eth0, percent: 10, direction: ingress}
            """)
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        let out = try #require(plan.faults.first)
        #expect(out.summary == "limit to 1mbit on eth0 egress from local hosts 10.213.0.2 ports 8080")
        let filters = NFQueuePlanTests.argv(out.inject).filter { $0.contains("filter") && $0.contains("prio") && $0.contains("5") }
        #expect(filters == [
            Self.tc("filter add dev eth0 parent fa17: protocol ip prio 5 u32 match ip src 10.213.0.2/32 match ip protocol 6 0xff match ip sport 8080 0xffff flowid fa17:2"),
            Self.tc("filter add dev eth0 parent fa17: protocol ip prio 5 u32 match ip src 10.213.0.2/32 match ip protocol 17 0xff match ip sport 8080 0xffff flowid fa17:2"),
        ])
        #expect(NFQueuePlanTests.argv(out.inject).first == Self.tc("qdisc replace dev eth0 root handle fa17: htb default 1"), "only the filtered traffic is shaped")
        let in_ = plan.faults[1]
        #expect(NFQueuePlanTests.argv(in_.inject).contains(Self.tc("qdisc replace dev flt5e7d0c1ai1 root handle fa17: htb default 2")), "no filter: all of it")
    }

    @Test("ingress latency with the nfqueue engine: the chain hooks PREROUTING for the interface; to matches the source, from the destination port")
    func ingressNFQueueHooksPrerouting() throws {
        let plan = try Self.plan("""
                - {name: slow-requests, type: latency, interface: eth0, delay: 80ms, engine: nfqueue, direction: ingress,
                   to: {hosts: [10.213.0.1]}, from: {ports: [8080], protocol: tcp}}
            """, netem: false)
        #expect(plan.problems.isEmpty, "\(plan.problems)")
        let fault = try #require(plan.faults.first)
        let commands = NFQueuePlanTests.argv(fault.inject)
        let ipt = Self.ns + ["iptables", "-w", "5", "-t", "mangle"]
        let chain = "FAULTLINE-5e7d0c1a-1"
        let comment = ["-m", "comment", "--comment", "faultline:5e7d0c1a:slow-requests"]
        #expect(commands.contains(ipt + ["-A", chain, "-p", "tcp", "-s", "10.213.0.1/32", "--dport", "8080"] + comment
                                  + ["-j", "NFQUEUE", "--queue-num", NFQueuePlanTests.queue(commands[0]), "--queue-bypass"]), "\(commands)")
        #expect(commands.last == ipt + ["-I", "PREROUTING", "1", "-i", "eth0"] + comment + ["-j", chain])
        #expect(NFQueuePlanTests.argv(fault.revert).first == ipt + ["-D", "PREROUTING", "-i", "eth0"] + comment + ["-j", chain])
        #expect(!commands.contains { $0.contains("ip6tables") }, "the IPv4 host leaves IPv6 out")
    }

    @Test("what cannot work is a problem before anything is applied: an ingress already taken, duplicate on ingress without netem")
    func ingressProblems() throws {
        let taken = try Self.plan("""
                - {name: slow-requests, type: bandwidth, interface: eth0, rate: 1mbit, direction: ingress}
            """, ingressQdiscs: ["eth0": "clsact"])
        #expect(taken.problems.map(\.message) == ["interface 'eth0' in netns app already has an clsact qdisc (an earlier run's, if 'faultline recover' finds one, else another tool's): an ingress fault needs the interface's ingress free"])
        let duplicate = try Self.plan("""
                - {name: twice, type: duplicate, interface: eth0, percent: 5, direction: ingress}
            """, netem: false)
        #expect(duplicate.problems.map(\.message).contains { $0.hasPrefix("the userspace nfqueue engine cannot duplicate packets an interface receives") })
    }

    @Test("the format: from and direction are keys of every tc fault; direction both is refused with the way out; two faults on one direction may not overlap")
    func theFormat() throws {
        for type in ["latency, delay: 10ms", "packet-loss, percent: 1", "corrupt, percent: 1", "duplicate, percent: 1",
                     "reorder, percent: 1, delay: 10ms", "bandwidth, rate: 1mbit"] {
            _ = try Self.plan("    - {name: f, type: \(type), interface: eth0, from: {ports: [80]}, direction: ingress}")
        }
        #expect(throws: ScenarioErrors.self) { try Self.plan("    - {name: f, type: latency, interface: eth0, delay: 10ms, direction: both}") }
        do {
            _ = try Self.plan("    - {name: f, type: latency, interface: eth0, delay: 10ms, direction: both}")
        } catch {
            #expect("\(error)".contains("spec.faults[0].direction: a tc fault shapes one direction: egress (what the interface sends) or ingress (what it receives); for both, add a second fault with the other direction"), "\(error)")
        }
        do {
            _ = try Self.plan("""
                    - {name: a, type: latency, interface: eth0, delay: 10ms, direction: ingress}
                    - {name: b, type: bandwidth, interface: eth0, rate: 1mbit, direction: ingress}
                """)
            Issue.record("two ingress faults on eth0 at once were accepted")
        } catch {
            #expect("\(error)".contains("faults 'a' and 'b' both shape the ingress of interface 'eth0'"), "\(error)")
        }
    }

    @Test("lint from the target's facts: an ingress tc fault whose 'to' names the service's own port matches no request to it, so the plan asks whether 'from' was meant; egress 'to' on such a port is left alone (services on 8080 call each other on 8080)")
    func lintForTheSwappedEnds() throws {
        let egress = try Self.plan("    - {name: slow, type: latency, interface: eth0, delay: 50ms, to: {ports: [8080]}}", listening: [8080])
        #expect(egress.warnings.isEmpty, "\(egress.warnings)")
        let ingress = try Self.plan("    - {name: slow, type: latency, interface: eth0, delay: 50ms, direction: ingress, to: {ports: [8080]}}", listening: [8080])
        #expect(ingress.warnings.first?.message.contains("did you mean 'from: {ports: [8080]}'?") == true)
        let right = try Self.plan("    - {name: slow, type: latency, interface: eth0, delay: 50ms, from: {ports: [8080]}}", listening: [8080])
        #expect(right.warnings.isEmpty, "\(right.warnings)")
    }
}
