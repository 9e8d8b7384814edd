import Foundation

extension Planner {
    /// `drop`: per direction and address family, a `FAULTLINE-<run>-<n>` chain with exemptions first,
    /// then `except` (RETURN), then the drop rules; the chain is hooked in at position 1 of INPUT/OUTPUT
    /// so it fires before existing ACCEPT rules.
    func planDrop(_ drop: DropFault, target: NetnsTarget?, into planned: inout PlannedFault, context: inout PlanContext) {
        planned.mechanism = "iptables"
        let toHosts = networks(drop.to?.hosts, context: &context)
        let fromHosts = networks(drop.from?.hosts, context: &context)
        let exceptHosts = networks(drop.except?.hosts, context: &context)
        let probability = drop.probability.value < 100 ? drop.probability : nil
        let connmark: UInt32? = probability == nil ? nil : context.nextConnmark << 24
        if probability != nil { context.nextConnmark += 1 }

        lintFilters(to: drop.to, from: drop.from, toHosts: toHosts, directions: drop.direction == .both ? [.egress, .ingress] : [drop.direction],
                    target: target, context: &context)
        let exemptions = dropExemptions(drop, target: target, toHosts: toHosts)
        planned.exemptions = exemptions.map(\.exemption)
        let directions: [TrafficDirection] = drop.direction == .both ? [.egress, .ingress] : [drop.direction]
        let families = IPFamily.allCases.filter { family in
            [toHosts, fromHosts].allSatisfy { hosts in hosts == nil || hosts!.contains { $0.family == family } }
        }
        // A list emptied by names that did not resolve was reported as such; it is not also a family mismatch.
        if families.isEmpty, toHosts?.isEmpty != true, fromHosts?.isEmpty != true {
            context.problem("'to' and 'from' hosts share no address family (one IPv4 only, the other IPv6 only): this drop would match nothing")
        }
        for direction in directions {
            let chain = context.chainName()
            let hook = direction == .egress ? "OUTPUT" : "INPUT"
            for family in families {
                let tool = family == .ipv4 ? "iptables" : "ip6tables"
                func rule(_ arguments: [String]) -> PlanAction {
                    .command(inNamespace(target, [tool, "-w", Self.iptablesWait] + arguments))
                }
                let comment = ["-m", "comment", "--comment", context.comment]
                var inject = [rule(["-N", chain])]
                for exemption in exemptions {
                    for match in exemption.matches(direction, family) {
                        inject.append(rule(["-A", chain] + match + comment + ["-j", "RETURN"]))
                    }
                }
                for match in IptablesMatch.rules(remote: drop.except, remoteHosts: exceptHosts, local: nil, localHosts: nil,
                                                 direction: direction, family: family) {
                    inject.append(rule(["-A", chain] + match.arguments + comment + ["-j", "RETURN"]))
                }
                let matches = drop.to == nil && drop.from == nil ? [IptablesMatch(protocol: nil, arguments: [])]
                    : IptablesMatch.rules(remote: drop.to, remoteHosts: toHosts, local: drop.from, localHosts: fromHosts,
                                          direction: direction, family: family)
                for match in matches {
                    for verdict in verdicts(for: match, family: family, reject: drop.reject, probability: probability, connmark: connmark) {
                        let jump = verdict.firstIndex(of: "-j") ?? verdict.endIndex
                        inject.append(rule(["-A", chain] + verdict[..<jump] + comment + verdict[jump...]))
                    }
                }
                inject.append(rule(["-I", hook, "1"] + comment + ["-j", chain]))
                planned.inject += inject
                planned.checks.append(.chain(namespace: namespacePath(target), tool: tool, chain: chain))
                planned.revert += [
                    rule(["-D", hook] + comment + ["-j", chain]),
                    rule(["-F", chain]),
                    rule(["-X", chain]),
                ]
            }
        }
    }

    /// The rules that drop (or reject) one match: per packet, or per new TCP connection below 100%.
    func verdicts(for match: IptablesMatch, family: IPFamily, reject: Bool, probability: Percent?, connmark: UInt32?) -> [[String]] {
        func target(tcp: Bool) -> [String] {
            guard reject else { return ["-j", "DROP"] }
            if tcp { return ["-j", "REJECT", "--reject-with", "tcp-reset"] }
            return ["-j", "REJECT", "--reject-with", family == .ipv4 ? "icmp-port-unreachable" : "icmp6-port-unreachable"]
        }
        let isTCP = match.protocol == .tcp
        let mayBeTCP = match.protocol == nil
        guard let probability, let connmark else {
            if mayBeTCP && reject {
                return [["-p", "tcp"] + match.arguments + target(tcp: true), match.arguments + target(tcp: false)]
            }
            return [match.arguments + target(tcp: isTCP)]
        }
        let mark = String(format: "0x%x/0x%x", connmark, Self.connmarkMask)
        let chance = ["-m", "statistic", "--mode", "random", "--probability", Self.fraction(probability)]
        var rules: [[String]] = []
        if isTCP || mayBeTCP {
            let tcp = mayBeTCP ? ["-p", "tcp"] + match.arguments : match.arguments
            rules.append(tcp + ["-m", "conntrack", "--ctstate", "NEW"] + chance + ["-j", "CONNMARK", "--set-xmark", mark])
            rules.append(tcp + ["-m", "connmark", "--mark", mark] + target(tcp: true))
        }
        if !isTCP {
            let other = mayBeTCP ? ["!", "-p", "tcp"] + match.arguments : match.arguments
            rules.append(other + chance + target(tcp: false))
        }
        return rules
    }

    static func fraction(_ percent: Percent) -> String {
        var text = String(format: "%.6f", percent.fraction)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }
}

extension Planner {
    /// Exempt traffic for a drop fault, as iptables matches per direction and family.
    struct DropExemption {
        var exemption: Exemption
        var matches: (TrafficDirection, IPFamily) -> [[String]]
    }

    func dropExemptions(_ drop: DropFault, target: NetnsTarget?, toHosts: [IPNetwork]?) -> [DropExemption] {
        let namedPorts = (drop.to?.ports ?? []) + (drop.from?.ports ?? [])
        func named(_ port: UInt16) -> Bool { namedPorts.contains { $0.contains(port) } }
        var result: [DropExemption] = []
        if !(toHosts ?? []).contains(where: \.isLoopback) {
            result.append(DropExemption(exemption: Exemption(reason: "loopback traffic", traffic: "interface lo"),
                                        matches: { direction, _ in [direction == .egress ? ["-o", "lo"] : ["-i", "lo"]] }))
        }
        if facts.isOwnNamespace(target), let port = facts.agentPort, !named(port) {
            result.append(DropExemption(exemption: Exemption(reason: "the agent's API", traffic: "tcp port \(port) (local)"),
                                        matches: { direction, _ in [["-p", "tcp", direction == .egress ? "--sport" : "--dport", "\(port)"]] }))
        }
        for port in facts.sshPorts where !named(port) {
            result.append(DropExemption(exemption: Exemption(reason: "SSH sessions", traffic: "tcp port \(port), both directions"),
                                        matches: { _, _ in [["-p", "tcp", "--sport", "\(port)"], ["-p", "tcp", "--dport", "\(port)"]] }))
        }
        result.append(DropExemption(exemption: Exemption(reason: "IPv6 neighbour discovery, so exempt traffic keeps flowing", traffic: "icmpv6 neighbour solicitation and advertisement"),
                                    matches: { _, family in
                                        family == .ipv4 ? [] : ["neighbour-solicitation", "neighbour-advertisement"].map {
                                            ["-p", "ipv6-icmp", "--icmpv6-type", $0]
                                        }
                                    }))
        return result
    }
}

/// One iptables match (without target) and the protocol it pins, if any.
struct IptablesMatch: Hashable {
    var `protocol`: TrafficProtocol?
    var arguments: [String]

    /// Matches for traffic whose remote end is `remote` and local end is `local`, seen in `direction`.
    static func rules(remote: TrafficFilter?, remoteHosts: [IPNetwork]?, local: TrafficFilter?, localHosts: [IPNetwork]?,
                      direction: TrafficDirection, family: IPFamily) -> [IptablesMatch] {
        guard remote != nil || local != nil else { return [] }
        func hosts(_ all: [IPNetwork]?) -> [IPNetwork?]? {
            guard let all else { return [nil] }
            let own = all.filter { $0.family == family }
            return own.isEmpty ? nil : own
        }
        guard let remoteSide = hosts(remoteHosts), let localSide = hosts(localHosts) else { return [] }
        let anyPorts = remote?.ports != nil || local?.ports != nil
        let proto = remote?.protocol ?? local?.protocol
        let protocols: [TrafficProtocol?] = anyPorts ? (proto.map { [$0] } ?? [.tcp, .udp]) : [proto == .all ? nil : proto]
        let egress = direction == .egress
        let remoteAddress = egress ? "-d" : "-s", localAddress = egress ? "-s" : "-d"
        let remotePort = egress ? "--dport" : "--sport", localPort = egress ? "--sport" : "--dport"
        let remotePorts: [PortRange?] = remote?.ports ?? [nil]
        let localPorts: [PortRange?] = local?.ports ?? [nil]
        var result: [IptablesMatch] = []
        for r in remoteSide {
            for l in localSide {
                for p in protocols {
                    for rp in remotePorts {
                        for lp in localPorts {
                            var arguments: [String] = []
                            if let p { arguments += ["-p", p == .icmp && family == .ipv6 ? "ipv6-icmp" : p.rawValue] }
                            if let r { arguments += [remoteAddress, r.description] }
                            if let l { arguments += [localAddress, l.description] }
                            if let rp { arguments += [remotePort, rp.iptablesArgument] }
                            if let lp { arguments += [localPort, lp.iptablesArgument] }
                            result.append(IptablesMatch(protocol: p, arguments: arguments))
                        }
                    }
                }
            }
        }
        return result
    }
}

extension Planner {
    /// Warnings from the target's facts about a filter that cannot match what was probably meant: `to` is the remote
    /// end, `from` the local one, and the two are easy to swap.
    func lintFilters(to: TrafficFilter?, from: TrafficFilter?, toHosts: [IPNetwork]?, directions: [TrafficDirection], target: NetnsTarget?,
                     context: inout PlanContext) {
        guard let facts = facts.namespace(target) else { return }
        let place = target.map { "\($0)" } ?? "this host's namespace"
        if let listening = facts.listeningPorts {
            let local = (to?.ports ?? []).filter { range in listening.contains { range.contains($0) } }
            let list = local.map(\.description).joined(separator: ", ")
            if !local.isEmpty, directions.contains(.ingress), from?.ports == nil {
                context.warning("'to' is the remote end, but \(place) listens on port \(list): ingress packets carry it as their destination, the local end, so 'to: {ports: [\(list)]}' matches no packet sent to that service; did you mean 'from: {ports: [\(list)]}'?")
            }
            // On egress, 'to' naming a port the target also listens on is common and right (services that all listen
            // on 8080 call each other on 8080): no warning there; a fault that matched nothing shows in its evidence.
            let unused = (from?.ports ?? []).filter { range in !listening.contains { range.contains($0) } }
            if !unused.isEmpty {
                let list = unused.map(\.description).joined(separator: ", ")
                context.warning("'from' is the local end, but no socket in \(place) listens on port \(list): no service there receives that traffic; did you mean 'to: {ports: [\(list)]}' (the remote end)?")
            }
        }
        if let addresses = facts.addresses, let toHosts {
            let own = toHosts.filter { network in network.prefix == (network.family == .ipv4 ? 32 : 128) && addresses.contains(network.address) }
            if !own.isEmpty {
                let list = own.map(\.address).joined(separator: ", ")
                context.warning("'to' is the remote end, but \(list) is an address of \(place) itself: its own traffic to it goes over loopback, which the fault does not touch; did you mean 'from' (the local end), or the address of the other side?")
            }
        }
    }
}
