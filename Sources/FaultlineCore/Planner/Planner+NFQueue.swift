extension Planner {
    /// Packets held by one nfqueue delayer at most; beyond it they pass undelayed (fail-open).
    public static let delayerLimit = 10_000
    /// The mark of the copies the delayer sends again; the fault's chain lets them pass.
    public static let delayerMark: UInt32 = 0xfa17_fa17
    public static var delayerMarkText: String { "0x" + String(delayerMark, radix: 16) }

    /// latency, packet-loss, duplicate, corrupt and reorder with the userspace engine: a `faultline delayer` process bound to an
    /// NFQUEUE queue, and per address family a mangle `FAULTLINE-<run>-<n>` chain hooked first into
    /// POSTROUTING for the interface (egress, like netem) or PREROUTING (ingress): exemptions and `except` RETURN,
    /// the `to`/`from` traffic (or all) goes to the queue with `--queue-bypass`, so traffic flows if the delayer dies.
    /// The copies the delayer sends again (packets made on this host) carry a mark and pass first.
    func planNFQueue(_ action: FaultAction, target: NetnsTarget?, into planned: inout PlannedFault, context: inout PlanContext) {
        guard let shaping = action.shaping else { return }
        let device = shaping.interface.rawValue
        checkInterface(device, target: target, context: &context)
        let queue = context.queueNumber()
        planned.mechanism = "nfqueue (userspace delayer, queue \(queue))"
        let toHosts = networks(shaping.to?.hosts, context: &context)
        let fromHosts = networks(shaping.from?.hosts, context: &context)
        let exceptHosts = networks(shaping.except?.hosts, context: &context)
        if shaping.isIngress, case .duplicate = action {
            context.problem("the userspace nfqueue engine cannot duplicate packets an interface receives (its copies go out, not in): duplicate with direction: ingress needs sch_netem (modprobe sch_netem)")
        }

        let exemptions = exemptPorts(target: target, to: shaping.to, from: shaping.from)
        planned.exemptions = exemptions.map(\.exemption)

        var delayer = [facts.executable, "delayer", "--queue", "\(queue)", "--limit", "\(Self.delayerLimit)", "--interface", device]
        switch action {
        case .latency(let f):
            delayer += ["--delay", f.delay.description]
            if let jitter = f.jitter { delayer += ["--jitter", jitter.description] }
            if let correlation = f.correlation { delayer += ["--correlation", TimeSpan.trim(correlation.value)] }
            if let distribution = f.distribution { delayer += ["--distribution", distribution.rawValue] }
        case .packetLoss(let f):
            delayer += ["--loss", TimeSpan.trim(f.percent.value)]
            if let correlation = f.correlation { delayer += ["--loss-correlation", TimeSpan.trim(correlation.value)] }
        case .duplicate(let f):
            delayer += ["--duplicate", TimeSpan.trim(f.percent.value)]
            if let correlation = f.correlation { delayer += ["--duplicate-correlation", TimeSpan.trim(correlation.value)] }
        case .corrupt(let f):
            delayer += ["--corrupt", TimeSpan.trim(f.percent.value)]
            if let correlation = f.correlation { delayer += ["--corrupt-correlation", TimeSpan.trim(correlation.value)] }
        case .reorder(let f):
            delayer += ["--delay", f.delay.description, "--reorder", TimeSpan.trim(f.percent.value)]
            if let correlation = f.correlation { delayer += ["--reorder-correlation", TimeSpan.trim(correlation.value)] }
            if let gap = f.gap { delayer += ["--gap", "\(gap)"] }
        default:
            break
        }
        planned.inject = [.start(inNamespace(target, delayer), .delayer)]

        let families = IPFamily.allCases.filter { family in
            [toHosts, fromHosts].allSatisfy { hosts in hosts == nil || hosts!.contains { $0.family == family } }
        }
        let direction = shaping.direction
        let chain = context.chainName()
        let comment = ["-m", "comment", "--comment", context.comment]
        for family in families {
            let tool = family == .ipv4 ? "iptables" : "ip6tables"
            func rule(_ arguments: [String]) -> PlanAction {
                .command(inNamespace(target, [tool, "-w", Self.iptablesWait, "-t", "mangle"] + arguments))
            }
            planned.inject.append(rule(["-N", chain]))
            planned.inject.append(rule(["-A", chain, "-m", "mark", "--mark", Self.delayerMarkText] + comment + ["-j", "RETURN"]))
            for (port, _) in exemptions {
                for side in ["--sport", "--dport"] {
                    planned.inject.append(rule(["-A", chain, "-p", "tcp", side, "\(port)"] + comment + ["-j", "RETURN"]))
                }
            }
            for match in IptablesMatch.rules(remote: shaping.except, remoteHosts: exceptHosts, local: nil, localHosts: nil,
                                             direction: direction, family: family) {
                planned.inject.append(rule(["-A", chain] + match.arguments + comment + ["-j", "RETURN"]))
            }
            let matches = !shaping.isFiltered ? [IptablesMatch(protocol: nil, arguments: [])]
                : IptablesMatch.rules(remote: shaping.to, remoteHosts: toHosts, local: shaping.from, localHosts: fromHosts, direction: direction, family: family)
            for match in matches {
                planned.inject.append(rule(["-A", chain] + match.arguments + comment + ["-j", "NFQUEUE", "--queue-num", "\(queue)", "--queue-bypass"]))
            }
            let (hook, side) = shaping.isIngress ? ("PREROUTING", "-i") : ("POSTROUTING", "-o")
            planned.inject.append(rule(["-I", hook, "1", side, device] + comment + ["-j", chain]))
            planned.checks.append(.chain(namespace: namespacePath(target), tool: tool, chain: chain, table: "mangle"))
            planned.revert += [
                rule(["-D", hook, side, device] + comment + ["-j", chain]),
                rule(["-F", chain]),
                rule(["-X", chain]),
            ]
        }
        planned.revert.append(.call(.stop(started: .delayer, grace: .seconds(5))))
    }

    /// A problem when the interface is known not to exist in the target's namespace.
    func checkInterface(_ device: String, target: NetnsTarget?, context: inout PlanContext) {
        let place = target?.description ?? "this host's namespace"
        guard let namespace = facts.namespace(target), namespace.unreadable == nil else {
            let reason = facts.namespace(target)?.unreadable ?? "not read"
            context.notes.append("interfaces of \(place) unknown (\(reason)): the plan assumes '\(device)' exists")
            return
        }
        if let interfaces = namespace.interfaces, !interfaces.contains(device) {
            context.problem("interface '\(device)' not found in \(place) (have: \(interfaces.joined(separator: ", ")))")
        }
    }
}
