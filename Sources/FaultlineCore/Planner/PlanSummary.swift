/// One-line descriptions of faults, filters and probes for plans and reports.
enum PlanSummary {
    static func describe(_ action: FaultAction, facts: HostFacts) -> String {
        let on = action.shaping.map(onInterface) ?? ""
        switch action {
        case .latency(let f):
            var text = "delay \(f.delay)"
            if let jitter = f.jitter { text += " ± \(jitter)" }
            if let correlation = f.correlation { text += " (correlation \(correlation))" }
            if let distribution = f.distribution { text += ", \(distribution.rawValue) distribution" }
            return text + on
        case .packetLoss(let f):
            return "lose \(f.percent) of packets" + correlation(f.correlation) + on
        case .corrupt(let f):
            return "corrupt \(f.percent) of packets" + correlation(f.correlation) + on
        case .duplicate(let f):
            return "duplicate \(f.percent) of packets" + correlation(f.correlation) + on
        case .reorder(let f):
            return "send \(f.percent) of packets at once, delay the rest \(f.delay)" + (f.gap.map { " (gap \($0))" } ?? "")
                + correlation(f.correlation) + on
        case .bandwidth(let f):
            return "limit to \(f.rate)" + on
        case .drop(let f):
            var text = "\(f.reject ? "reject" : "drop") \(f.probability.value < 100 ? "\(f.probability) of " : "")\(f.direction == .both ? "" : "\(f.direction.rawValue) ")traffic"
            if let to = f.to { text += " with remote \(describe(to))" }
            if let from = f.from { text += " with local \(describe(from))" }
            if let except = f.except { text += ", except \(describe(except))" }
            return text
        case .killProcess(let f):
            return "\(f.signal) to \(f.mode == .all ? "every" : f.mode == .one ? "the oldest" : "one random") process matching \(f.match.description)"
                + (f.every.map { ", every \($0)" } ?? "")
        case .pauseProcess(let f):
            return "pause processes matching \(f.match.description)"
        case .diskFill(let f):
            return "fill the filesystem of \(f.path): \(describe(f.amount, of: "filesystem"))"
        case .cpuStress(let f):
            return "\(f.workers.map { "\($0)" } ?? facts.cpuCount.map { "\($0)" } ?? "one per core") busy worker(s) at \(f.load) load"
        case .memoryStress(let f):
            return "allocate and touch \(describe(f.amount, of: "memory"))"
        }
    }

    static func correlation(_ value: Percent?) -> String { value.map { " (correlation \($0))" } ?? "" }

    /// " on eth0 egress to hosts 10.0.0.5 from ports 8080, except ...", " on eth0 ingress (all traffic)".
    static func onInterface(_ shaping: Shaping) -> String {
        var text = " on \(shaping.interface) \(shaping.direction.rawValue)"
        if !shaping.isFiltered { text += " (all traffic)" }
        if let to = shaping.to { text += (shaping.isIngress ? " from remote " : " to ") + describe(to) }
        if let from = shaping.from { text += (shaping.isIngress ? " to local " : " from local ") + describe(from) }
        if let except = shaping.except { text += ", except \(describe(except))" }
        return text
    }

    static func describe(_ filter: TrafficFilter) -> String {
        var parts: [String] = []
        if let hosts = filter.hosts { parts.append("hosts " + hosts.map(\.description).joined(separator: ", ")) }
        if let ports = filter.ports { parts.append("ports " + ports.map(\.description).joined(separator: ", ")) }
        if let proto = filter.protocol { parts.append(proto.rawValue) }
        return parts.joined(separator: " ")
    }

    static func describe(_ amount: FillAmount, of whole: String) -> String {
        switch amount {
        case .fillTo(let percent): "up to \(percent) of the \(whole)"
        case .size(let size): "\(size)"
        }
    }

    static func steadyState(_ state: SteadyState?) -> [String] {
        guard let state else { return ["no steady-state probes: the run checks nothing before, during or after the method"] }
        var lines = state.probes.map(describe)
        if let slo = state.slo {
            lines.append("slo: \(slo.objective) of probe results good" + (slo.latency.map { ", slower than \($0) counts as bad" } ?? ""))
        }
        if let abort = state.abortWhen {
            var conditions: [String] = []
            if let count = abort.consecutiveFailures { conditions.append("\(count) failures in a row of any probe") }
            if let burn = abort.burnRate { conditions.append("error budget burning over \(TimeSpan.trim(burn.factor))x in \(burn.window)") }
            lines.append("abort and revert everything at: " + conditions.joined(separator: ", or "))
        }
        return lines
    }

    static func describe(_ probe: Probe) -> String {
        var text = "probe \(probe.name) every \(probe.interval)" + (probe.during.map { " while \($0) is in place" } ?? "") + ": "
        switch probe.check {
        case .http(let http):
            text += "\(http.method) \(http.url) within \(http.timeout), expect status \(http.expect.status.map(\.description).joined(separator: "|"))"
            if let contains = http.expect.bodyContains { text += " and body containing '\(contains)'" }
        case .tcp(let tcp):
            text += "tcp connect to \(tcp.address) within \(tcp.timeout)" + (tcp.expect == .unreachable ? ", expect it to fail (unreachable)" : "")
        case .command(let command):
            text += "run \(ShellQuote.join(command.argv)) within \(command.timeout), expect exit \(command.expect.exitCode)"
        case .prometheus(let prometheus):
            let bound: String = switch prometheus.expect {
            case .below(let value): "below \(TimeSpan.trim(value))"
            case .above(let value): "above \(TimeSpan.trim(value))"
            case .equals(let value): "equal to \(TimeSpan.trim(value))"
            }
            text += "query \(prometheus.url) for \(prometheus.query), expect \(bound)"
            switch prometheus.auth {
            case .bearer(let source)?: text += ", bearer token from \(source)"
            case .basic(let username, let password)?: text += ", basic auth as '\(username)' with the password from \(password)"
            case nil: break
            }
        }
        if let rate = probe.rate { text += "; load \(TimeSpan.trim(rate)) requests/s" }
        if let ramp = probe.ramp { text += "; load from \(TimeSpan.trim(ramp.from)) to \(TimeSpan.trim(ramp.to)) requests/s over \(ramp.over)" }
        for spike in probe.spikes ?? [] { text += "; spike to \(TimeSpan.trim(spike.rate)) requests/s at +\(spike.at) for \(spike.duration)" }
        return text
    }
}

/// Shell quoting for display only: commands always run as argv.
public enum ShellQuote {
    public static func quote(_ word: String) -> String {
        let safe = word.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-./:=,+@%".contains($0)) }
        if safe && !word.isEmpty { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    public static func join(_ argv: [String]) -> String { argv.map(quote).joined(separator: " ") }
}
