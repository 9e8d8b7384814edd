import Yams

extension ScenarioDecoder {
    func faults(_ node: Node, _ path: NodePath, maxDuration: TimeSpan?, defaultTarget: NetnsTarget?) -> [Fault]? {
        guard case .sequence(let sequence) = node else {
            r.error("expected a list of faults, got \(r.describe(node))", at: node, path)
            return nil
        }
        let items = Array(sequence)
        if items.isEmpty {
            r.error("a scenario needs at least one fault", at: node, path)
            return nil
        }
        checkUniqueNames(items, path, what: "fault")
        var faults: [(index: Int, fault: Fault)] = []
        for (index, item) in items.enumerated() {
            if let fault = fault(item, path.index(index), maxDuration: maxDuration) { faults.append((index, fault)) }
        }
        if let maxDuration {
            checkSharedInterfaces(faults, items: items, path, maxDuration: maxDuration, defaultTarget: defaultTarget)
        }
        return faults.count == items.count ? faults.map(\.fault) : nil
    }

    /// tc gives an interface one root qdisc: two tc faults may not shape the same interface at once.
    func checkSharedInterfaces(_ faults: [(index: Int, fault: Fault)], items: [Node], _ path: NodePath, maxDuration: TimeSpan, defaultTarget: NetnsTarget?) {
        for (i, (_, a)) in faults.enumerated() {
            guard let sa = a.action.shaping else { continue }
            for (j, (index, b)) in faults.enumerated() where j > i {
                guard let sb = b.action.shaping, sa.interface == sb.interface, sa.direction == sb.direction,
                      (a.target ?? defaultTarget)?.namespacePath == (b.target ?? defaultTarget)?.namespacePath else { continue }
                let endA = a.duration.map { a.start + $0 } ?? maxDuration
                let endB = b.duration.map { b.start + $0 } ?? maxDuration
                guard a.start < endB, b.start < endA else { continue }
                r.error("faults '\(a.name)' and '\(b.name)' both shape the \(sa.direction.rawValue) of interface '\(sa.interface)' between \(max(a.start, b.start)) and \(min(endA, endB)); one direction of an interface takes one tc fault at a time: give them windows that do not overlap",
                        at: items[index]["interface"], path.index(index).key("interface"))
            }
        }
    }

    func fault(_ node: Node, _ path: NodePath, maxDuration: TimeSpan?) -> Fault? {
        guard case .mapping = node else {
            r.error("expected a fault (a mapping), got \(r.describe(node))", at: node, path)
            return nil
        }
        let type: FaultType?
        if let typeNode = node["type"] {
            type = r.choice(FaultType.self, what: "fault type")(typeNode, path.key("type"))
        } else if !mappingKeys(node).contains(where: { $0 == "<<" || Spelling.suggest($0, among: ["type"]) != nil }) {
            type = nil
            r.error("missing required key 'type' (one of \(FaultType.allCases.map(\.rawValue).joined(separator: ", ")))", at: node, path)
        } else {
            type = nil
        }
        let allParameters = Set(ScenarioSchema.faultParameters.values.flatMap { $0 })
        let allowed = ScenarioSchema.faultCommon + (type.map { ScenarioSchema.faultParameters[$0]! } ?? allParameters.sorted())
        guard let f = r.fields(node, path, allowed: allowed, hint: { key in
            guard let type, allParameters.contains(key) else { return nil }
            let owners = FaultType.allCases.filter { ScenarioSchema.faultParameters[$0]!.contains(key) }.map(\.rawValue)
            let near = Spelling.suggest(key, among: allowed).map { "did you mean '\($0)'? " } ?? ""
            return "key '\(key)' does not apply to \(type.rawValue) faults (\(near)it is a parameter of \(owners.joined(separator: ", ")))"
        }) else { return nil }

        let name = r.required(f, "name", r.value(ResourceName.self, what: "a name"))
        let start = r.optional(f, "start", duration)
        let length = r.optional(f, "duration", positiveDuration)
        let target = r.optional(f, "target", self.target)
        if let maxDuration {
            let begin = start ?? .zero
            if begin >= maxDuration {
                r.error("start \(begin) is not before maxDuration \(maxDuration)", at: f["start"], path.key("start"))
            } else if let length, begin + length > maxDuration {
                r.error("start \(begin) + duration \(length) ends at \(begin + length), after maxDuration \(maxDuration)",
                        at: f["duration"], path.key("duration"))
            }
        }
        guard let type else { return nil }
        let action: FaultAction? = switch type {
        case .latency: latency(f).map(FaultAction.latency)
        case .packetLoss: netemRate(f).map(FaultAction.packetLoss)
        case .corrupt: netemRate(f).map(FaultAction.corrupt)
        case .duplicate: netemRate(f).map(FaultAction.duplicate)
        case .reorder: reorder(f).map(FaultAction.reorder)
        case .bandwidth: bandwidth(f).map(FaultAction.bandwidth)
        case .drop: drop(f).map(FaultAction.drop)
        case .killProcess: killProcess(f).map(FaultAction.killProcess)
        case .pauseProcess: r.required(f, "match", processMatch).map { .pauseProcess(PauseProcessFault(match: $0)) }
        case .diskFill: diskFill(f).map(FaultAction.diskFill)
        case .cpuStress: cpuStress(f).map(FaultAction.cpuStress)
        case .memoryStress: fillAmount(f, what: "memory").map { .memoryStress(MemoryStressFault(amount: $0)) }
        }
        guard let name, let action else { return nil }
        return Fault(name: name, start: start ?? .zero, duration: length, target: target, action: action)
    }

    // MARK: Network

    var interface: (Node, NodePath) -> InterfaceName? { r.value(InterfaceName.self, what: "an interface name") }

    func positivePercent(_ node: Node, _ path: NodePath) -> Percent? {
        guard let value = percent(node, path) else { return nil }
        guard value.value > 0 else { r.error("must be above 0%", at: node, path); return nil }
        return value
    }

    func latency(_ f: Fields) -> LatencyFault? {
        let interface = r.required(f, "interface", self.interface)
        let delay = r.required(f, "delay", positiveDuration)
        let jitter = r.optional(f, "jitter", positiveDuration)
        let correlation = r.optional(f, "correlation", percent)
        let distribution = r.optional(f, "distribution", r.choice(DelayDistribution.self, what: "distribution"))
        for key in ["correlation", "distribution"] where f.has(key) && !f.has("jitter") {
            r.error("'\(key)' shapes the jitter: add 'jitter'", at: f.keyNodes[key], f.path)
        }
        let (to, from, except, direction) = shapingFilters(f)
        let engine = r.optional(f, "engine", r.choice(NetemEngine.self, what: "engine"))
        guard let interface, let delay else { return nil }
        return LatencyFault(interface: interface, delay: delay, jitter: jitter, correlation: correlation,
                            distribution: distribution, to: to, from: from, except: except, direction: direction, engine: engine ?? .auto)
    }

    func netemRate(_ f: Fields) -> NetemRateFault? {
        let interface = r.required(f, "interface", self.interface)
        let value = r.required(f, "percent", positivePercent)
        let correlation = r.optional(f, "correlation", percent)
        let (to, from, except, direction) = shapingFilters(f)
        let engine = r.optional(f, "engine", r.choice(NetemEngine.self, what: "engine"))
        guard let interface, let value else { return nil }
        return NetemRateFault(interface: interface, percent: value, correlation: correlation, to: to, from: from, except: except, direction: direction,
                              engine: f.has("engine") ? engine : nil)
    }

    func reorder(_ f: Fields) -> ReorderFault? {
        let interface = r.required(f, "interface", self.interface)
        let value = r.required(f, "percent", positivePercent)
        let correlation = r.optional(f, "correlation", percent)
        let gap = r.optional(f, "gap") { node, path in r.int(node, path, range: 1...1_000_000) }
        let delay = r.required(f, "delay", positiveDuration, why: "reorder holds back the other packets by this delay")
        let (to, from, except, direction) = shapingFilters(f)
        guard let interface, let value, let delay else { return nil }
        return ReorderFault(interface: interface, percent: value, correlation: correlation, gap: gap, delay: delay, to: to, from: from, except: except, direction: direction)
    }

    func bandwidth(_ f: Fields) -> BandwidthFault? {
        let interface = r.required(f, "interface", self.interface)
        let rate = r.required(f, "rate", r.value(BitRate.self, what: "a rate"))
        let burst = r.optional(f, "burst", positiveBytes)
        let limit = r.optional(f, "limit", positiveBytes)
        let (to, from, except, direction) = shapingFilters(f)
        guard let interface, let rate else { return nil }
        return BandwidthFault(interface: interface, rate: rate, burst: burst, limit: limit, to: to, from: from, except: except, direction: direction)
    }

    /// `to` (the remote end), `from` (the local end), `except` and `direction` of a tc fault: egress or ingress, not both.
    func shapingFilters(_ f: Fields) -> (to: TrafficFilter?, from: TrafficFilter?, except: TrafficFilter?, direction: TrafficDirection?) {
        let (to, from, except) = (r.optional(f, "to", filter), r.optional(f, "from", filter), r.optional(f, "except", filter))
        let direction = r.optional(f, "direction", r.choice(TrafficDirection.self, what: "direction"))
        if direction == .both {
            r.error("a tc fault shapes one direction: egress (what the interface sends) or ingress (what it receives); for both, add a second fault with the other direction", at: f.values["direction"], f.path.key("direction"))
            return (to, from, except, nil)
        }
        return (to, from, except, direction)
    }

    func drop(_ f: Fields) -> DropFault? {
        let direction = r.optional(f, "direction", r.choice(TrafficDirection.self, what: "direction"))
        let (to, from, except) = (r.optional(f, "to", filter), r.optional(f, "from", filter), r.optional(f, "except", filter))
        let probability = r.optional(f, "probability", positivePercent)
        let reject = r.optional(f, "reject", r.bool)
        return DropFault(direction: direction ?? .both, to: to, from: from, except: except,
                         probability: probability ?? Percent(100), reject: reject ?? false)
    }

    func filter(_ node: Node, _ path: NodePath) -> TrafficFilter? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.filter) else { return nil }
        if f.isEmpty {
            r.error("an empty filter: name hosts, ports or protocol, or remove it", at: node, path)
            return nil
        }
        let hosts = r.optional(f, "hosts") { node, path in r.listOrOne(node, path, r.value(HostSpec.self, what: "a host")) }
        let ports = r.optional(f, "ports") { node, path in r.listOrOne(node, path, r.value(PortRange.self, what: "a port")) }
        let proto = r.optional(f, "protocol", r.choice(TrafficProtocol.self, what: "protocol"))
        if f.has("ports"), let proto, proto == .icmp || proto == .all {
            r.error("ports need protocol tcp or udp (or no protocol, for both); \(proto.rawValue) has no ports", at: f["protocol"], path.key("protocol"))
        }
        return TrafficFilter(hosts: hosts, ports: ports, protocol: proto)
    }

    // MARK: Process

    func processMatch(_ node: Node, _ path: NodePath) -> ProcessMatch? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.match) else { return nil }
        if f.isEmpty {
            r.error("match needs at least one selector: pid, pidFile, name, cmdline or user", at: node, path)
            return nil
        }
        let pid = r.optional(f, "pid") { node, path in r.int(node, path, range: 1...Int(Int32.max)) }
        let pidFile = r.optional(f, "pidFile", absolutePath)
        let name = r.optional(f, "name", r.nonEmptyString)
        let cmdline = r.optional(f, "cmdline") { node, path -> String? in
            guard let text = r.nonEmptyString(node, path) else { return nil }
            do { _ = try Regex(text) } catch {
                r.error("cmdline is not a valid regular expression '\(text)': \(error)", at: node, path)
                return nil
            }
            return text
        }
        let user = r.optional(f, "user", r.nonEmptyString)
        let maxMatches = r.optional(f, "maxMatches") { node, path in r.int(node, path, range: 1...100_000) }
        if f.has("maxMatches"), ScenarioSchema.match.filter({ $0 != "maxMatches" }).allSatisfy({ !f.has($0) }) {
            r.error("match needs at least one selector besides maxMatches: pid, pidFile, name, cmdline or user", at: node, path)
            return nil
        }
        return ProcessMatch(pid: pid.map(Int32.init), pidFile: pidFile, name: name, cmdline: cmdline, user: user, maxMatches: maxMatches)
    }

    func killProcess(_ f: Fields) -> KillProcessFault? {
        let match = r.required(f, "match", processMatch)
        let signal = r.optional(f, "signal", r.value(Signal.self, what: "a signal"))
        let mode = r.optional(f, "mode", r.choice(KillMode.self, what: "mode"))
        let every = r.optional(f, "every", positiveDuration)
        if let signal, [Signal.stop.number, 20, 21, 22].contains(signal.number) {
            r.error("\(signal) stops processes and kill-process never resumes them: use a pause-process fault, which sends SIGCONT on revert",
                    at: f["signal"], f.path.key("signal"))
        }
        guard let match else { return nil }
        return KillProcessFault(match: match, signal: signal ?? .kill, mode: mode ?? .all, every: every)
    }

    // MARK: Disk and stress

    func absolutePath(_ node: Node, _ path: NodePath) -> String? {
        guard let text = r.nonEmptyString(node, path) else { return nil }
        guard text.hasPrefix("/"), !text.contains("\0") else {
            r.error("'\(text)' is not an absolute path", at: node, path)
            return nil
        }
        return text
    }

    func positiveBytes(_ node: Node, _ path: NodePath) -> ByteCount? {
        guard let value = bytes(node, path) else { return nil }
        guard value.bytes > 0 else { r.error("must be more than 0 bytes", at: node, path); return nil }
        return value
    }

    /// `fillTo` or `size`, exactly one.
    func fillAmount(_ f: Fields, what: String) -> FillAmount? {
        switch (f["fillTo"], f["size"]) {
        case (nil, nil):
            r.error("give 'fillTo' (percent of the \(what == "memory" ? "memory" : "filesystem")) or 'size'", at: f.node, f.path)
        case (.some, .some):
            r.error("give either 'fillTo' or 'size', not both", at: f.keyNodes["size"], f.path)
        case (let node?, nil):
            return positivePercent(node, f.path.key("fillTo")).map(FillAmount.fillTo)
        case (nil, let node?):
            return positiveBytes(node, f.path.key("size")).map(FillAmount.size)
        }
        return nil
    }

    func diskFill(_ f: Fields) -> DiskFillFault? {
        let path = r.required(f, "path") { node, path -> String? in
            guard let text = absolutePath(node, path) else { return nil }
            if let why = DiskFillFault.refusal(of: text) {
                r.error("disk-fill path '\(text)' \(why)", at: node, path)
                return nil
            }
            return text
        }
        let amount = fillAmount(f, what: "disk")
        let reserve = r.optional(f, "reserve", bytes)
        guard let path, let amount else { return nil }
        return DiskFillFault(path: path, amount: amount, reserve: reserve)
    }

    func cpuStress(_ f: Fields) -> CPUStressFault? {
        let workers = r.optional(f, "workers") { node, path in r.int(node, path, range: 1...1024) }
        let load = r.optional(f, "load", positivePercent)
        return CPUStressFault(workers: workers, load: load ?? Percent(100))
    }
}

/// The keys of a mapping node, as written.
func mappingKeys(_ node: Node) -> [String] {
    guard case .mapping(let mapping) = node else { return [] }
    return mapping.compactMap { $0.key.string }
}
