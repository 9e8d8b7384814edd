import FaultlineCore
import Foundation
@testable import FaultlineSystem
import Testing

/// What latency and packet-loss need, per engine, and how the engine check reads the kernel's answers.
@Suite struct PreflightNeedsTests {
    let preflight = Preflight(capabilities: nil)

    func needs(_ fault: String) throws -> [String] {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: needs}
            spec:
              maxDuration: 1m
              faults:
                - \(fault)
            """, file: "needs.yaml")
        return preflight.needs(scenario.spec.faults[0], target: nil).map { "\($0.kind.rawValue) \($0.name)\($0.optional ? " (optional)" : "")" }
    }

    @Test func eachEngineNeedsItsOwnTools() throws {
        #expect(try needs("{name: f, type: latency, interface: eth0, delay: 10ms}")
                == ["capability NET_ADMIN", "kernel netem or nfqueue engine", "capability NET_RAW (optional)"])
        #expect(try needs("{name: f, type: latency, interface: eth0, delay: 10ms, engine: netem}")
                == ["capability NET_ADMIN", "tool tc", "kernel sch_htb", "kernel cls_u32", "kernel sch_netem"])
        #expect(try needs("{name: f, type: packet-loss, interface: eth0, percent: 1%, engine: nfqueue}")
                == ["capability NET_ADMIN", "capability NET_RAW (optional)", "tool iptables", "tool ip6tables", "kernel NFQUEUE (iptables target, nfnetlink_queue)"])
        // corrupt and reorder have the nfqueue engine too, so they need either one like the others.
        #expect(try needs("{name: f, type: corrupt, interface: eth0, percent: 1%}")
                == ["capability NET_ADMIN", "kernel netem or nfqueue engine", "capability NET_RAW (optional)"])
        #expect(try needs("{name: f, type: reorder, interface: eth0, percent: 1%, delay: 10ms}")
                == ["capability NET_ADMIN", "kernel netem or nfqueue engine", "capability NET_RAW (optional)"])
        #expect(try needs("{name: f, type: bandwidth, interface: eth0, rate: 1mbit}")
                == ["capability NET_ADMIN", "tool tc", "kernel sch_htb", "kernel cls_u32", "kernel sch_tbf"])
    }

    @Test("a run's preflight checks the engine its plan chose, not either one: nfqueue where the kernel has no sch_netem, netem where it has")
    func theRunChecksThePlannedEngine() async throws {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: planned-engine}
            spec:
              maxDuration: 1m
              faults:
                - {name: slow, type: latency, interface: lo, delay: 10ms}
            """, file: "planned.yaml")
        // Without capabilities known and no kernel probe (it needs CAP_NET_ADMIN), the checks are what is asked.
        let preflight = Preflight(capabilities: ProcessCapabilities(effective: [], permitted: [], bounding: []))
        for (netem, expected, absent) in [(false, "NFQUEUE (iptables target, nfnetlink_queue)", "sch_netem"), (true, "sch_netem", "NFQUEUE (iptables target, nfnetlink_queue)")] {
            var facts = HostFacts()
            facts.netemAvailable = netem
            facts.nfqueueAvailable = true
            let plan = Planner(facts: facts).plan(scenario, runID: "e1")
            let names = await preflight.check(scenario, plan: plan).checks.map(\.name)
            #expect(names.contains(expected) && !names.contains(absent) && !names.contains(Preflight.eitherEngine), "netem \(netem): \(names)")
        }
    }

    @Test(.enabled(if: ["tc", "iptables", "ip6tables"].allSatisfy { tool in ["/usr/sbin", "/sbin", "/usr/bin"].contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") } },
                   "needs tc and iptables installed"))
    func theEngineCheckSaysWhichEngineRunsAndWhy() {
        let base = PreflightCheck(fault: nil, type: .latency, kind: .kernel, name: Preflight.eitherEngine, status: .ok)
        let noNetem: [KernelFeature: String?] = [.htb: nil, .u32: nil, .netem: "'tc ...': Error: Specified qdisc kind is unknown.", .nfqueue: nil]
        let fallback = preflight.engineCheck(base, featureResults: noNetem, probeFailure: nil)
        #expect(fallback.status == .ok)
        #expect(fallback.detail == "nfqueue: the kernel has no sch_netem ('tc ...': Error: Specified qdisc kind is unknown.), so engine auto uses the userspace nfqueue delayer")
        var neither = noNetem
        neither[.nfqueue] = "binding a queue: Protocol not supported"
        let missing = preflight.engineCheck(base, featureResults: neither, probeFailure: nil)
        #expect(missing.status == .missing)
        #expect(missing.detail?.hasSuffix("nfqueue cannot run either: missing NFQUEUE (binding a queue: Protocol not supported)") == true)
        #expect(missing.fix?.contains("modprobe nfnetlink_queue xt_NFQUEUE") == true)
        let all: [KernelFeature: String?] = [.htb: nil, .u32: nil, .netem: nil, .nfqueue: nil]
        #expect(preflight.engineCheck(base, featureResults: all, probeFailure: nil).detail == "netem: the kernel has sch_netem, so engine auto uses tc netem")
        #expect(preflight.engineCheck(base, featureResults: [:], probeFailure: "not tried").status == .unknown)
    }

    @Test func theKernelInventoryAnswersFromWhatItCouldRead() {
        let loaded = KernelInventory(loaded: "xt_NFQUEUE 16384 1 - Live 0x0\n", builtin: nil, installed: "kernel/net/sched/sch_htb.ko:\n", config: nil)
        #expect(loaded.has(module: "xt_NFQUEUE", config: "X") == true)
        #expect(loaded.has(module: "sch_netem", config: "CONFIG_NET_SCH_NETEM") == false, "the module tree is the answer when present")
        let configOnly = KernelInventory(loaded: nil, builtin: nil, installed: nil,
                                         config: ["CONFIG_NETFILTER_NETLINK_QUEUE=y", "# CONFIG_NET_SCH_NETEM is not set"])
        #expect(configOnly.has(module: "nfnetlink_queue", config: "CONFIG_NETFILTER_NETLINK_QUEUE") == true)
        #expect(configOnly.has(module: "sch_netem", config: "CONFIG_NET_SCH_NETEM") == false)
        #expect(KernelInventory(loaded: nil, builtin: nil, installed: nil, config: nil).has(module: "sch_netem", config: "CONFIG_NET_SCH_NETEM") == nil)
    }
}
