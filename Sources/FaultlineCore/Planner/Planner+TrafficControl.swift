extension Planner {
    /// tc faults: an htb root with a clean default class and a fault class whose leaf is netem or tbf;
    /// u32 filters send exempt and `except` traffic to the clean class and `to`/`from` traffic to the fault class.
    /// Egress shapes the interface's own root; ingress redirects what the interface receives (an ingress qdisc
    /// with a mirred filter) to an ifb device made for the fault, whose root carries the same tree.
    func planTrafficControl(_ action: FaultAction, target: NetnsTarget?, into planned: inout PlannedFault, context: inout PlanContext) {
        guard let shaping = action.shaping else { return }
        let interface = shaping.interface.rawValue
        var scratch = context  // the hosts are resolved (with their notes and problems) where the filters are planned
        lintFilters(to: shaping.to, from: shaping.from, toHosts: networks(shaping.to?.hosts, context: &scratch),
                    directions: [shaping.direction], target: target, context: &context)
        if engine(for: action, context: &context) == .nfqueue {
            planNFQueue(action, target: target, into: &planned, context: &context)
            return
        }
        guard let leaf = leafQdisc(action) else { return }
        planned.mechanism = (leaf.first == "netem" ? "tc netem" : "tc tbf") + (shaping.isIngress ? " on an ifb device (ingress)" : "")
        func tc(_ arguments: [String]) -> PlanAction { .command(inNamespace(target, ["tc"] + arguments)) }
        func ip(_ arguments: [String]) -> PlanAction { .command(inNamespace(target, ["ip"] + arguments)) }

        let device: String
        var previous: RootQdisc?
        var inject: [PlanAction] = []
        if shaping.isIngress {
            checkIngress(interface, target: target, context: &context)
            device = context.ifbName()
            inject += [ip(["link", "add", device, "type", "ifb"]), ip(["link", "set", "dev", device, "up"])]
        } else {
            device = interface
            previous = previousRoot(interface, target: target, context: &context)
        }
        let to = filterSelectors(remote: shaping.to, local: shaping.from, ingress: shaping.isIngress, context: &context)
        let except = filterSelectors(remote: shaping.except, local: nil, ingress: shaping.isIngress, context: &context)
        let exemptions = trafficControlExemptions(target: target, to: shaping.to, from: shaping.from)
        planned.exemptions = exemptions.map(\.exemption)

        inject += [
            tc(["qdisc", "replace", "dev", device, "root", "handle", Self.rootHandle, "htb", "default", shaping.isFiltered ? "1" : "2"]),
            tc(["class", "add", "dev", device, "parent", Self.rootHandle, "classid", Self.cleanClass, "htb", "rate", "100gbit"]),
            tc(["class", "add", "dev", device, "parent", Self.rootHandle, "classid", Self.faultClass, "htb", "rate", "100gbit"]),
            tc(["qdisc", "add", "dev", device, "parent", Self.faultClass, "handle", Self.leafHandle] + leaf),
        ]
        let groups: [(selectors: [U32Selector], priority: Int, classID: String)] = [
            (exemptions.flatMap(\.selectors), 1, Self.cleanClass),
            (except ?? [], 3, Self.cleanClass),
            (to ?? [], 5, Self.faultClass),
        ]
        for group in groups {
            for selector in group.selectors {
                let priority = group.priority + (selector.family == .ipv6 ? 1 : 0)
                inject.append(tc(["filter", "add", "dev", device, "parent", Self.rootHandle,
                                  "protocol", selector.family == .ipv4 ? "ip" : "ipv6", "prio", "\(priority)", "u32"]
                                 + selector.matches + ["flowid", group.classID]))
            }
        }
        if shaping.isIngress {
            // The tree is ready before the first packet is redirected into it.
            inject += [
                tc(["qdisc", "add", "dev", interface, "handle", Self.ingressHandle, "ingress"]),
                tc(["filter", "add", "dev", interface, "parent", Self.ingressHandle, "protocol", "all", "prio", "1", "u32",
                    "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", device]),
            ]
            planned.inject = inject
            planned.checks = [.ingress(namespace: namespacePath(target), device: interface, ifb: device)]
            planned.revert = [
                tc(["qdisc", "del", "dev", interface, "handle", Self.ingressHandle, "ingress"]),
                ip(["link", "del", device]),
            ]
            return
        }
        planned.inject = inject
        planned.checks = [.rootQdisc(namespace: namespacePath(target), device: device,
                                     previous: previous.map { $0.isKernelDefault ? RootQdisc(kind: $0.kind, handle: "0:") : $0 })]
        if let previous, let restore = previous.restoreArguments, !previous.isKernelDefault {
            planned.revert = [tc(["qdisc", "replace", "dev", device, "root", "handle", previous.handle] + restore)]
        } else {
            planned.revert = [tc(["qdisc", "del", "dev", device, "root", "handle", Self.rootHandle])]
        }
    }

    /// Problems for an ingress fault on an interface that is missing or whose ingress is taken (an ingress or clsact
    /// qdisc Faultline did not make, or one an earlier run left).
    func checkIngress(_ device: String, target: NetnsTarget?, context: inout PlanContext) {
        checkInterface(device, target: target, context: &context)
        guard let namespace = facts.namespace(target), namespace.unreadable == nil, let kind = namespace.ingressQdiscs?[device] else { return }
        let place = target?.description ?? "this host's namespace"
        context.problem("interface '\(device)' in \(place) already has an \(kind) qdisc (an earlier run's, if 'faultline recover' finds one, else another tool's): an ingress fault needs the interface's ingress free")
    }

    /// The leaf qdisc's kind and parameters (netem or tbf).
    func leafQdisc(_ action: FaultAction) -> [String]? {
        func percent(_ value: Percent) -> String { value.description }
        func correlation(_ value: Percent?) -> [String] { value.map { [percent($0)] } ?? [] }
        let netem: [String]
        switch action {
        case .latency(let f):
            netem = ["delay", f.delay.tcArgument] + (f.jitter.map { [$0.tcArgument] } ?? []) + correlation(f.correlation)
                + (f.distribution.map { ["distribution", $0.rawValue] } ?? [])
        case .packetLoss(let f):
            netem = ["loss", percent(f.percent)] + correlation(f.correlation)
        case .corrupt(let f):
            netem = ["corrupt", percent(f.percent)] + correlation(f.correlation)
        case .duplicate(let f):
            netem = ["duplicate", percent(f.percent)] + correlation(f.correlation)
        case .reorder(let f):
            netem = ["delay", f.delay.tcArgument, "reorder", percent(f.percent)] + correlation(f.correlation)
                + (f.gap.map { ["gap", "\($0)"] } ?? [])
        case .bandwidth(let f):
            let burst = f.burst?.bytes ?? max(f.rate.bytesPerSecond / 100, 1_600)
            let limit = f.limit?.bytes ?? burst + f.rate.bytesPerSecond / 20
            return ["tbf", "rate", f.rate.description, "burst", "\(burst)", "limit", "\(limit)"]
        default:
            return nil
        }
        return ["netem"] + netem
    }

    /// The engine a latency, loss, duplicate, corrupt or reorder fault uses here, with a note or problem
    /// saying why; nil for bandwidth (tbf). Only latency and packet-loss may ask for one; the others follow auto.
    func engine(for action: FaultAction, context: inout PlanContext) -> NetemEngine? {
        let fault = context.currentFault.map { "'\($0)'" } ?? "the fault"
        let requested: NetemEngine
        switch action {
        case .latency(let f): requested = f.engine
        case .packetLoss(let f), .duplicate(let f), .corrupt(let f): requested = f.engine ?? .auto
        case .reorder: requested = .auto
        default:
            return nil
        }
        let noQueue = "the kernel cannot queue packets to userspace (needs nfnetlink_queue and the iptables NFQUEUE target: modprobe nfnetlink_queue xt_NFQUEUE)"
        switch requested {
        case .netem:
            if facts.netemAvailable == false {
                context.problem("the kernel has no sch_netem, which engine: netem needs; use engine: nfqueue or auto (the userspace delayer)")
            } else if facts.netemAvailable == nil {
                context.notes.append("whether the kernel has sch_netem is unknown; \(fault) assumes it does")
            }
            return .netem
        case .nfqueue:
            if facts.nfqueueAvailable == false { context.problem(noQueue + ", which engine: nfqueue needs") }
            context.notes.append("\(fault) uses the userspace nfqueue delayer: the scenario asks for engine: nfqueue")
            return .nfqueue
        case .auto:
            switch facts.netemAvailable {
            case true?:
                return .netem
            case false?:
                if facts.nfqueueAvailable == false {
                    context.problem("the kernel has no sch_netem and \(noQueue): neither engine can run here")
                }
                context.notes.append("engine auto: \(fault) uses the userspace nfqueue delayer because the kernel has no sch_netem")
                return .nfqueue
            case nil:
                context.notes.append("whether the kernel has sch_netem is unknown; \(fault) assumes it does (engine auto: netem)")
                return .netem
            }
        }
    }

    /// The interface's current root qdisc, checked: problems for a missing interface or a root that cannot be restored.
    func previousRoot(_ device: String, target: NetnsTarget?, context: inout PlanContext) -> RootQdisc? {
        let place = target?.description ?? "this host's namespace"
        guard let namespace = facts.namespace(target), namespace.unreadable == nil else {
            let reason = facts.namespace(target)?.unreadable ?? "not read"
            context.notes.append("interfaces and qdiscs of \(place) unknown (\(reason)): the plan assumes '\(device)' exists with the kernel's default root qdisc")
            return nil
        }
        if let interfaces = namespace.interfaces, !interfaces.contains(device) {
            context.problem("interface '\(device)' not found in \(place) (have: \(interfaces.joined(separator: ", ")))")
            return nil
        }
        guard let root = namespace.rootQdiscs[device] else { return nil }
        if root.handle == Self.rootHandle {
            context.problem("interface '\(device)' in \(place) still has a Faultline qdisc (\(root.kind) \(root.handle)) from an earlier run: run 'faultline recover' first")
        } else if !root.isKernelDefault, root.restoreArguments == nil {
            context.problem("interface '\(device)' in \(place) has a root qdisc '\(root.kind) \(root.handle)' that Faultline did not create and cannot restore exactly; Faultline will not replace it")
        } else if !root.isKernelDefault {
            context.notes.append("'\(device)' in \(place) has root qdisc \(root.kind) \(root.handle); revert restores it")
        }
        return root
    }

    /// Exempt traffic for a tc fault: SSH both ways, and the agent's port in the agent's own namespace.
    func trafficControlExemptions(target: NetnsTarget?, to: TrafficFilter?, from: TrafficFilter?) -> [(exemption: Exemption, selectors: [U32Selector])] {
        exemptPorts(target: target, to: to, from: from).map { port, exemption in
            let selectors = ["sport", "dport"].flatMap { field in
                IPFamily.allCases.map { U32Selector.port(family: $0, protocol: .tcp, field: field, block: (port, 0xffff)) }
            }
            return (exemption, selectors)
        }
    }

    /// TCP ports a shaping fault leaves alone (both directions), unless `to` or `from` names them.
    func exemptPorts(target: NetnsTarget?, to: TrafficFilter?, from: TrafficFilter?) -> [(port: UInt16, exemption: Exemption)] {
        let named = (to?.ports ?? []) + (from?.ports ?? [])
        var result: [(UInt16, Exemption)] = []
        func exempt(_ port: UInt16, _ reason: String) {
            guard !named.contains(where: { $0.contains(port) }) else { return }
            result.append((port, Exemption(reason: reason, traffic: "tcp port \(port), both directions")))
        }
        if facts.isOwnNamespace(target), let port = facts.agentPort { exempt(port, "the agent's API") }
        for port in facts.sshPorts { exempt(port, "SSH sessions") }
        return result
    }

    /// u32 selectors for traffic whose remote end is `remote` and local end is `local` (the destination and source on
    /// egress, the other way round on ingress); nil for no filter at all (all traffic).
    func filterSelectors(remote: TrafficFilter?, local: TrafficFilter?, ingress: Bool, context: inout PlanContext) -> [U32Selector]? {
        guard remote != nil || local != nil else { return nil }
        return U32Selector.matching(remoteHosts: networks(remote?.hosts, context: &context), remotePorts: remote?.ports,
                                    localHosts: networks(local?.hosts, context: &context), localPorts: local?.ports,
                                    protocol: remote?.protocol ?? local?.protocol, ingress: ingress)
    }

    /// Wraps argv to run in the target's network namespace.
    func inNamespace(_ target: NetnsTarget?, _ argv: [String]) -> [String] {
        guard let path = namespacePath(target) else { return argv }
        return ["nsenter", "--net=\(path)", "--"] + argv
    }

    /// Where commands enter the target's namespace: its pin when the run pins it, else its own path.
    func namespacePath(_ target: NetnsTarget?) -> String? {
        guard let target else { return nil }
        return facts.namespace(target)?.pin?.path ?? target.namespacePath
    }
}

/// One u32 match list for one address family.
struct U32Selector: Hashable {
    var family: IPFamily
    var matches: [String]

    static func protocolNumber(_ proto: TrafficProtocol, _ family: IPFamily) -> String? {
        switch proto {
        case .tcp: "6"
        case .udp: "17"
        case .icmp: family == .ipv4 ? "1" : "58"
        case .all: nil
        }
    }

    static func port(family: IPFamily, protocol proto: TrafficProtocol, field: String, block: (value: UInt16, mask: UInt16)) -> U32Selector {
        let ip = family == .ipv4 ? "ip" : "ip6"
        return U32Selector(family: family, matches: [
            "match", ip, "protocol", protocolNumber(proto, family)!, "0xff",
            "match", ip, field, "\(block.value)", hex(block.mask),
        ])
    }

    static func hex(_ value: UInt16) -> String { "0x" + String(value, radix: 16) }

    /// Selectors for traffic between a remote end (`remoteHosts`, any when nil; `remotePorts`) and a local end, with
    /// `protocol`: on egress the remote end is the destination, on ingress the source.
    static func matching(remoteHosts: [IPNetwork]?, remotePorts: [PortRange]?, localHosts: [IPNetwork]? = nil, localPorts: [PortRange]? = nil,
                         protocol proto: TrafficProtocol?, ingress: Bool = false) -> [U32Selector] {
        let (remoteAddress, localAddress) = ingress ? ("src", "dst") : ("dst", "src")
        let (remotePort, localPort) = ingress ? ("sport", "dport") : ("dport", "sport")
        func side(_ hosts: [IPNetwork]?, _ family: IPFamily) -> [IPNetwork?]? {
            guard let hosts else { return [nil] }
            let own = hosts.filter { $0.family == family }
            return own.isEmpty ? nil : own
        }
        let anyPorts = remotePorts != nil || localPorts != nil
        let protocols: [TrafficProtocol?] = anyPorts ? (proto.map { [$0] } ?? [.tcp, .udp]) : [proto == .all ? nil : proto]
        let remoteBlocks: [(value: UInt16, mask: UInt16)?] = remotePorts.map { $0.flatMap(\.maskedBlocks) } ?? [nil]
        let localBlocks: [(value: UInt16, mask: UInt16)?] = localPorts.map { $0.flatMap(\.maskedBlocks) } ?? [nil]
        var result: [U32Selector] = []
        for family in IPFamily.allCases {
            // A family that one side's hosts leave out has no traffic between the two.
            guard let remotes = side(remoteHosts, family), let locals = side(localHosts, family) else { continue }
            let ip = family == .ipv4 ? "ip" : "ip6"
            for remote in remotes {
                for local in locals {
                    for proto in protocols {
                        for remoteBlock in remoteBlocks {
                            for localBlock in localBlocks {
                                var matches: [String] = []
                                if let remote { matches += ["match", ip, remoteAddress, remote.description] }
                                if let local { matches += ["match", ip, localAddress, local.description] }
                                if let proto, let number = protocolNumber(proto, family) { matches += ["match", ip, "protocol", number, "0xff"] }
                                if let block = remoteBlock { matches += ["match", ip, remotePort, "\(block.value)", hex(block.mask)] }
                                if let block = localBlock { matches += ["match", ip, localPort, "\(block.value)", hex(block.mask)] }
                                if matches.isEmpty { matches = ["match", "u32", "0", "0"] }
                                result.append(U32Selector(family: family, matches: matches))
                            }
                        }
                    }
                }
            }
        }
        return result
    }
}
