import FaultlineCore
@testable import FaultlineFaults
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// drop and bandwidth for real, between two namespaces joined by veth, with real TCP traffic.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces && Privilege.hasTool("python3"), "needs root, ip, tc, iptables, nsenter and python3"))
struct NetworkDriverTests {
    typealias Net = TestNetwork

    /// Sets up the two namespaces with servers on B (8080, 9090 and a 2 MB sender on 8081) and A (7465, 7466).
    func withNetwork(_ body: (TestNetwork, _ serverB: ProcessIdentity) async throws -> Void) async throws {
        let network = try await TestNetwork.create()
        do {
            let server = try await network.serve(in: network.b, ports: [8080: 0, 9090: 0, 8081: 2_000_000])
            try await network.serve(in: network.a, ports: [7465: 0, 7466: 0])
            try await body(network, server)
        } catch {
            await network.remove()
            throw error
        }
        await network.remove()
    }

    /// Applies the scenario's single fault, checks it is active, runs `during`, reverts, checks it is gone.
    /// The evidence (read just before the revert) comes back.
    @discardableResult
    func inject(_ yaml: String, runner: any CommandRunner = SubprocessRunner(), agentPort: UInt16? = nil, executable: String? = nil,
                during: () async throws -> Void) async throws -> FaultEvidence? {
        let (_, plan) = try await ScenarioHarness.plan(yaml, runner: runner, agentPort: agentPort, executable: executable)
        let context = DriverContext(runner: runner)
        let driver = Drivers.driver(for: plan.faults[0], context: context)
        let journal = MemoryJournal()
        let record = try await driver.apply(journal: journal)
        #expect(journal.all.last == record, "the revert record is journalled before the fault is applied (a steps driver journals each step as it goes)")
        let evidence: FaultEvidence?
        do {
            #expect(try await driver.verify(record) == .active)
            try await during()
            evidence = try await driver.evidence(record)
        } catch {
            try? await driver.revert(record)
            throw error
        }
        try await driver.revert(record)
        #expect(try await driver.verify(record) == .reverted)
        try await driver.revert(record)  // a second revert finds nothing and succeeds
        return evidence
    }

    @Test func dropStopsOnlyTheFilteredPortAndComesBack() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.a, faults: """
                    - {name: db-down, type: drop, direction: egress, to: {hosts: [\(Net.addressB)], ports: [8080], protocol: tcp}}
                """)
            try await inject(yaml) {
                let blocked = try await net.connect(from: net.a, to: Net.addressB, port: 8080, count: 10, timeout: 0.3)
                #expect(blocked.timeout == 10)
                let other = try await net.connect(from: net.a, to: Net.addressB, port: 9090, count: 10, timeout: 0.3)
                #expect(other.ok == 10)
                let otherHost = try await net.connect(from: net.a, to: Net.address6B, port: 8080, count: 10, timeout: 0.3)
                #expect(otherHost.ok == 10, "the host filter names only the IPv4 address")
            }
            let r1 = try await net.connect(from: net.a, to: Net.addressB, port: 8080, count: 10, timeout: 0.3)
            #expect(r1.ok == 10)
        }
    }

    @Test func dropThirtyPercentFailsThatShareOfNewConnections() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.a, faults: """
                    - {name: flaky, type: drop, probability: 30%, to: {hosts: [\(Net.addressB)], ports: [8080], protocol: tcp}}
                """)
            try await inject(yaml) {
                let result = try await net.connect(from: net.a, to: Net.addressB, port: 8080, count: 400, timeout: 0.5, parallel: 40)
                let share = Double(result.failed) / Double(result.total)
                print("drop 30%: \(result.failed) of \(result.total) new connections failed (\(Int(share * 100))%)")
                #expect(abs(share - 0.30) <= 0.08)
            }
        }
    }

    @Test func rejectFailsFastInsteadOfTimingOut() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.a, faults: """
                    - {name: refuse, type: drop, direction: egress, reject: true, to: {ports: [8080]}}
                """)
            try await inject(yaml) {
                let result = try await net.connect(from: net.a, to: Net.addressB, port: 8080, count: 20, timeout: 2)
                #expect(result.refused == 20)
                #expect(result.medianSeconds < 0.1)
                let v6 = try await net.connect(from: net.a, to: Net.address6B, port: 8080, count: 5, timeout: 2)
                #expect(v6.refused == 5, "IPv6 gets the reject too")
            }
        }
    }

    @Test func ingressOnlyDropsWhatArrives() async throws {
        try await withNetwork { net, _ in
            // On the server: drop packets arriving for its local port 8080.
            let yaml = ScenarioHarness.scenario(target: net.b, faults: """
                    - {name: no-clients, type: drop, direction: ingress, from: {ports: [8080], protocol: tcp}}
                """)
            try await inject(yaml) {
                let r2 = try await net.connect(from: net.a, to: Net.addressB, port: 8080, count: 5, timeout: 0.3)
                #expect(r2.timeout == 5)
                let r3 = try await net.connect(from: net.a, to: Net.addressB, port: 9090, count: 5, timeout: 0.3)
                #expect(r3.ok == 5)
                // Egress from B is untouched: B can still reach A.
                let r4 = try await net.connect(from: net.b, to: Net.addressA, port: 7466, count: 5, timeout: 0.3)
                #expect(r4.ok == 5)
            }
        }
    }

    @Test func aPidTargetHitsThatProcesssNamespace() async throws {
        try await withNetwork { net, server in
            // `pid: N` is the namespace of process N (a container, say): here the server in B.
            let yaml = """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: pid-target}
                spec:
                  maxDuration: 1m
                  faults:
                    - {name: cut, type: drop, direction: ingress, target: {pid: \(server.pid)}, from: {ports: [9090]}}
                """
            try await inject(yaml) {
                let blocked = try await net.connect(from: net.a, to: Net.addressB, port: 9090, count: 5, timeout: 0.3)
                #expect(blocked.timeout == 5)
                let open = try await net.connect(from: net.a, to: Net.addressB, port: 8080, count: 5, timeout: 0.3)
                #expect(open.ok == 5)
            }
        }
    }

    @Test func theAgentsOwnPortIsExempt() async throws {
        try await withNetwork { net, _ in
            // An agent living in namespace A on port 7465: a drop of everything leaves its port alone.
            let yaml = ScenarioHarness.scenario(faults: """
                    - {name: blackout, type: drop}
                """)
            try await inject(yaml, runner: NamespacedRunner(namespace: net.a), agentPort: 7465) {
                let r5 = try await net.connect(from: net.b, to: Net.addressA, port: 7465, count: 5, timeout: 0.3)
                #expect(r5.ok == 5)
                let r6 = try await net.connect(from: net.b, to: Net.addressA, port: 7466, count: 5, timeout: 0.3)
                #expect(r6.timeout == 5)
            }
        }
    }

    @Test func bandwidthLimitsADownloadAndReverts() async throws {
        try await withNetwork { net, _ in
            let before = try await net.download(from: net.a, host: Net.addressB, port: 8081)
            let yaml = ScenarioHarness.scenario(target: net.b, faults: """
                    - {name: thin-pipe, type: bandwidth, interface: eth0, rate: 8mbit}
                """)
            try await inject(yaml) {
                let slow = try await net.download(from: net.a, host: Net.addressB, port: 8081)
                print("bandwidth 8mbit: 2 MB in \(slow.seconds) s (before: \(before.seconds) s)")
                #expect(slow.bytes == 2_000_000)
                #expect(abs(slow.seconds - 2.0) <= 0.5)
            }
            let after = try await net.download(from: net.a, host: Net.addressB, port: 8081)
            #expect(after.seconds < 0.5)
        }
    }

    @Test("bandwidth on ingress: what eth0 receives goes through an ifb device and is limited; revert leaves no ifb and no ingress qdisc")
    func bandwidthOnIngressLimitsWhatArrives() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.a, faults: """
                    - {name: thin-in, type: bandwidth, interface: eth0, rate: 8mbit, direction: ingress, to: {hosts: [\(Net.addressB)], ports: [8081]}}
                """)
            let evidence = try await inject(yaml) {
                let links = try await net.must(["ip", "netns", "exec", net.a, "ip", "-o", "link", "show", "type", "ifb"]).standardOutput
                #expect(links.contains("flt"), "\(links)")
                let slow = try await net.download(from: net.a, host: Net.addressB, port: 8081)
                print("bandwidth 8mbit on ingress: 2 MB in \(slow.seconds) s")
                #expect(slow.bytes == 2_000_000)
                #expect((1.5...4.0).contains(slow.seconds), "2 MB at 8 Mbit/s takes about 2 s: \(slow.seconds) s")
            }
            #expect((evidence?.hits ?? 0) > 100, "\(String(describing: evidence))")
            #expect(evidence?.detail.contains("tbf qdisc on flt") == true, "\(String(describing: evidence))")
            let links = try await net.must(["ip", "netns", "exec", net.a, "ip", "-o", "link", "show", "type", "ifb"]).standardOutput
            #expect(links.isEmpty, "the ifb device is gone: \(links)")
            let qdiscs = try await net.must(["ip", "netns", "exec", net.a, "tc", "qdisc", "show", "dev", "eth0"]).standardOutput
            #expect(!qdiscs.contains("ingress"), "\(qdiscs)")
            let after = try await net.download(from: net.a, host: Net.addressB, port: 8081)
            #expect(after.seconds < 0.5)
        }
    }

    @Test("an ingress fault left by a dead runner: reverted from its journal record alone (as the guard and recover do), no ifb and no ingress qdisc left")
    func anIngressFaultIsRevertedFromItsRecord() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.a, faults: """
                    - {name: thin-in, type: bandwidth, interface: eth0, rate: 8mbit, direction: ingress}
                """)
            let (_, plan) = try await ScenarioHarness.plan(yaml)
            let journal = MemoryJournal()
            let record = try await Drivers.driver(for: plan.faults[0], context: DriverContext()).apply(journal: journal)
            // A fresh driver from the record, with nothing of the plan, as after a crash.
            let recovering = Drivers.driver(for: try #require(journal.all.last), context: DriverContext())
            #expect(try await recovering.verify(record) == .active)
            try await recovering.revert(record)
            #expect(try await recovering.verify(record) == .reverted)
            let links = try await net.must(["ip", "netns", "exec", net.a, "ip", "-o", "link", "show", "type", "ifb"]).standardOutput
            let qdiscs = try await net.must(["ip", "netns", "exec", net.a, "tc", "qdisc", "show", "dev", "eth0"]).standardOutput
            #expect(links.isEmpty && !qdiscs.contains("ingress"), "\(links) \(qdiscs)")
        }
    }

    @Test("from on egress is the local end: a limit on the service's own port 8081 slows what it sends from there; one on 9090 leaves 8081 alone and acts on nothing")
    func fromShapesTheServicesOwnPort() async throws {
        try await withNetwork { net, _ in
            let own = ScenarioHarness.scenario(target: net.b, faults: """
                    - {name: slow-answers, type: bandwidth, interface: eth0, rate: 8mbit, from: {ports: [8081], protocol: tcp}}
                """)
            let acted = try await inject(own) {
                let slow = try await net.download(from: net.a, host: Net.addressB, port: 8081)
                #expect((1.5...3.0).contains(slow.seconds), "2 MB at 8 Mbit/s: \(slow.seconds) s")
            }
            #expect((acted?.hits ?? 0) > 100, "\(String(describing: acted))")
            let other = ScenarioHarness.scenario(target: net.b, faults: """
                    - {name: slow-other, type: bandwidth, interface: eth0, rate: 8mbit, from: {ports: [9090], protocol: tcp}}
                """)
            let idle = try await inject(other) {
                let fast = try await net.download(from: net.a, host: Net.addressB, port: 8081)
                #expect(fast.seconds < 0.5, "only port 9090 is limited: \(fast.seconds) s")
            }
            #expect(idle?.hits == 0, "\(String(describing: idle))")
        }
    }

    @Test("latency on ingress with the nfqueue engine: requests to B's port 8080 wait 100 ms as they arrive (PREROUTING), those to 9090 do not")
    func nfqueueLatencyOnIngress() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.b, faults: """
                    - {name: slow-requests, type: latency, interface: eth0, delay: 100ms, engine: nfqueue, direction: ingress, from: {ports: [8080], protocol: tcp}}
                """)
            let evidence = try await inject(yaml, executable: TestPaths.faultline) {
                let rules = try await net.must(["ip", "netns", "exec", net.b, "iptables", "-t", "mangle", "-S", "PREROUTING"]).standardOutput
                #expect(rules.contains("-i eth0") && rules.contains("FAULTLINE-"), "\(rules)")
                let slow = try await net.handshakes(from: net.a, to: Net.addressB, port: 8080, count: 10)
                let fast = try await net.handshakes(from: net.a, to: Net.addressB, port: 9090, count: 10)
                #expect(slow.percentile(0.5) >= 90, "\(slow.summary)")
                #expect(fast.percentile(0.5) < 50, "\(fast.summary)")
            }
            #expect((evidence?.hits ?? 0) >= 10, "\(String(describing: evidence))")
            let after = try await net.handshakes(from: net.a, to: Net.addressB, port: 8080, count: 10)
            #expect(after.percentile(0.5) < 50, "\(after.summary)")
        }
    }

    @Test(.enabled(if: NetworkDriverTests.netemAvailable, "the kernel has no sch_netem: ingress latency with netem is checked by its exact commands (ShapingDirectionTests) only"))
    func netemLatencyOnIngress() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.b, faults: """
                    - {name: slow-requests, type: latency, interface: eth0, delay: 100ms, engine: netem, direction: ingress, from: {ports: [8080], protocol: tcp}}
                """)
            try await inject(yaml) {
                let slow = try await net.handshakes(from: net.a, to: Net.addressB, port: 8080, count: 10)
                #expect(slow.percentile(0.5) >= 90, "\(slow.summary)")
            }
        }
    }

    /// Whether this kernel has sch_netem (a netem qdisc can be made in a scratch namespace).
    static let netemAvailable: Bool = {
        let name = "flt-netem-probe-\(getpid())"
        func run(_ argv: [String]) -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = argv
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        guard Privilege.canUseNamespaces, run(["ip", "netns", "add", name]) else { return false }
        defer { _ = run(["ip", "netns", "del", name]) }
        return run(["ip", "netns", "exec", name, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"])
    }()

    @Test func aPreexistingRootQdiscIsBackUnchanged() async throws {
        try await withNetwork { net, _ in
            try await net.must(["ip", "netns", "exec", net.b, "tc", "qdisc", "add", "dev", "eth0", "root", "handle", "1:",
                                "tbf", "rate", "100mbit", "burst", "64kb", "latency", "100ms"])
            let before = try await net.must(["ip", "netns", "exec", net.b, "tc", "-j", "qdisc", "show", "dev", "eth0"]).standardOutput
            let yaml = ScenarioHarness.scenario(target: net.b, faults: """
                    - {name: thin-pipe, type: bandwidth, interface: eth0, rate: 8mbit, to: {ports: [8081]}}
                """)
            try await inject(yaml) {
                let during = try await net.must(["ip", "netns", "exec", net.b, "tc", "qdisc", "show", "dev", "eth0"]).standardOutput
                #expect(during.contains("htb fa17: root"))
            }
            let after = try await net.must(["ip", "netns", "exec", net.b, "tc", "-j", "qdisc", "show", "dev", "eth0"]).standardOutput
            #expect(after == before)
        }
    }

    @Test("a taken NFQUEUE queue (another delayer holds it): the fault's delayer binds the next free one and the latency still acts")
    func aTakenQueueIsSkipped() async throws {
        try await withNetwork { net, _ in
            let yaml = ScenarioHarness.scenario(target: net.a, faults: """
                    - {name: slow, type: latency, interface: eth0, delay: 100ms, engine: nfqueue, to: {hosts: [\(Net.addressB)], ports: [8080], protocol: tcp}}
                """)
            let scenario = try ScenarioLoader.load(yaml: yaml, file: "test.yaml")
            var facts = await HostFactsReader().read(for: scenario)
            facts.executable = TestPaths.faultline
            let plan = Planner(facts: facts).plan(scenario, runID: "t6t6t6t6")
            let planned = try #require(plan.faults.first)
            let queue = try #require(planned.queue)
            // Another program holds the planned queue in the same namespace.
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-flt-sl-blocker-\(UInt32.random(in: 0 ... .max)).log").path
            defer { try? FileManager.default.removeItem(atPath: log) }
            let blocker = try ChildProcess.spawn(["ip", "netns", "exec", net.a, TestPaths.faultline, "delayer", "--queue", "\(queue)", "--interface", "eth0", "--delay", "1ms"],
                                                 table: ProcessTable(), output: log)
            defer {
                _ = try? ProcessSignaller().send(.kill, to: blocker)
                _ = ChildProcess.reap(blocker.pid)
            }
            for _ in 0..<200 where !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") {
                try await Task.sleep(for: .milliseconds(10))
            }
            let driver = Drivers.driver(for: planned, context: DriverContext())
            let record = try await driver.apply(journal: MemoryJournal())
            do {
                let rules = try await net.must(["ip", "netns", "exec", net.a, "iptables", "-t", "mangle", "-S"]).standardOutput
                #expect(rules.contains("--queue-num \(queue + 1)") && !rules.contains("--queue-num \(queue) "), "\(rules)")
                let times = try await net.handshakes(from: net.a, to: Net.addressB, port: 8080, count: 10)
                #expect(times.percentile(0.5) >= 90, "the latency acts through the other queue: \(times)")
            } catch {
                try? await driver.revert(record)
                throw error
            }
            try await driver.revert(record)
            #expect(try await driver.verify(record) == .reverted)
        }
    }
}
