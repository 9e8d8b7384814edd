import Yams

extension ScenarioDecoder {
    func steadyState(_ node: Node, _ path: NodePath) -> SteadyState? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.steadyState) else { return nil }
        let probes = r.optional(f, "probes", self.probes)
        let slo = r.optional(f, "slo", self.slo)
        let abortWhen = r.optional(f, "abortWhen", self.abortWhen)
        let probeCount: Int = if case .sequence(let items)? = f["probes"] { items.count } else { 0 }
        if let abortNode = f.keyNodes["abortWhen"], probeCount == 0 {
            r.error("abortWhen needs at least one probe in steadyState.probes to watch", at: abortNode, path.key("abortWhen"))
        }
        if let sloNode = f.keyNodes["slo"], probeCount == 0 {
            r.error("slo needs at least one probe in steadyState.probes to judge", at: sloNode, path.key("slo"))
        }
        if abortWhen?.burnRate != nil, f["slo"] == nil {
            r.error("burnRate needs an slo: add steadyState.slo with an objective", at: f["abortWhen"].flatMap { $0["burnRate"] },
                    path.key("abortWhen").key("burnRate"))
        }
        let recoveryWindow = r.optional(f, "recoveryWindow", positiveDuration)
        if let windowNode = f.keyNodes["recoveryWindow"] {
            if probeCount == 0 {
                r.error("recoveryWindow needs at least one probe in steadyState.probes to watch the recovery", at: windowNode, path.key("recoveryWindow"))
            } else if let recoveryWindow, recoveryWindow > SteadyState.maximumRecoveryWindow {
                r.error("recoveryWindow \(recoveryWindow) is longer than \(SteadyState.maximumRecoveryWindow): a service that takes longer to recover has not recovered",
                        at: f["recoveryWindow"] ?? windowNode, path.key("recoveryWindow"))
            }
        }
        return SteadyState(probes: probes ?? [], slo: slo, abortWhen: abortWhen, recoveryWindow: recoveryWindow)
    }

    func probes(_ node: Node, _ path: NodePath) -> [Probe]? {
        let probes = r.list(node, path, probe)
        if case .sequence(let items) = node { checkUniqueNames(Array(items), path, what: "probe") }
        return probes
    }

    /// Reports a name used twice, at the second use.
    func checkUniqueNames(_ items: [Node], _ path: NodePath, what: String) {
        var seen: [String: Int] = [:]
        for (index, item) in items.enumerated() {
            guard let nameNode = item["name"], case .scalar(let scalar) = nameNode else { continue }
            if let first = seen[scalar.string] {
                r.error("duplicate \(what) name '\(scalar.string)' (first used at \(path.index(first)))", at: nameNode, path.index(index).key("name"))
            } else {
                seen[scalar.string] = index
            }
        }
    }

    func probe(_ node: Node, _ path: NodePath) -> Probe? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.probe) else { return nil }
        let name = r.required(f, "name", r.value(ResourceName.self, what: "a name"))
        let interval = r.optional(f, "interval", probeInterval)
        let rate = r.optional(f, "rate", loadRate)
        let ramp = r.optional(f, "ramp", self.ramp)
        let spikes = r.optional(f, "spike") { node, path in r.listOrOne(node, path, spike) }
        let during = r.optional(f, "during", r.value(ResourceName.self, what: "a fault name"))
        let kinds = ScenarioSchema.probeKinds.filter(f.has)
        var check: ProbeCheck?
        if kinds.isEmpty {
            r.error("a probe needs one of \(ScenarioSchema.probeKinds.joined(separator: ", "))", at: node, path)
        } else if kinds.count > 1 {
            r.error("a probe has one kind, found \(kinds.joined(separator: " and ")): split it into \(kinds.count) probes",
                    at: f.keyNodes[kinds[1]], path)
        } else {
            let kind = kinds[0]
            let kindPath = path.key(kind)
            switch kind {
            case "http": check = http(f[kind]!, kindPath).map(ProbeCheck.http)
            case "tcp": check = tcp(f[kind]!, kindPath).map(ProbeCheck.tcp)
            case "command": check = command(f[kind]!, kindPath).map(ProbeCheck.command)
            default: check = prometheus(f[kind]!, kindPath).map(ProbeCheck.prometheus)
            }
        }
        for key in ["rate", "ramp", "spike"] where f.has(key) && !kinds.isEmpty && kinds != ["http"] {
            r.error("'\(key)' drives load and needs an http probe", at: f.keyNodes[key], path)
        }
        if f.has("rate"), f.has("ramp") {
            r.error("give either 'rate' or 'ramp', not both", at: f.keyNodes["ramp"], path)
        }
        guard let name, let check else { return nil }
        if let spikes {
            let sorted = spikes.sorted { $0.at < $1.at }
            for (earlier, later) in zip(sorted, sorted.dropFirst()) where later.at.microseconds < earlier.at.microseconds + earlier.duration.microseconds {
                r.error("spikes overlap: the one at \(later.at) starts before the one at \(earlier.at) ends", at: f.keyNodes["spike"], path.key("spike"))
            }
        }
        return Probe(name: name, interval: interval ?? .seconds(1), check: check, rate: rate, ramp: ramp, spikes: spikes, during: during)
    }

    /// Requests per second of load: above 0 and at most `Probe.maxLoadRate` (more loads this host, not the service).
    func loadRate(_ node: Node, _ path: NodePath) -> Double? {
        guard let value = r.positiveNumber(node, path) else { return nil }
        guard value <= Probe.maxLoadRate else {
            r.error("at most \(Int(Probe.maxLoadRate)) requests/s per probe, got \(TimeSpan.trim(value)): split the load over several probes",
                    at: node, path)
            return nil
        }
        return value
    }

    /// A probe's interval: at least `Probe.minimumInterval`.
    func probeInterval(_ node: Node, _ path: NodePath) -> TimeSpan? {
        guard let value = positiveDuration(node, path) else { return nil }
        guard value.microseconds >= Probe.minimumInterval.microseconds else {
            r.error("interval \(value) is shorter than \(Probe.minimumInterval): for more requests per second use 'rate'", at: node, path)
            return nil
        }
        return value
    }

    /// `{at: 20s, for: 5s, rate: 400}`: from `at` after the method started, `for` that long, that many requests per second.
    func spike(_ node: Node, _ path: NodePath) -> LoadSpike? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.spike) else { return nil }
        let at = r.required(f, "at", duration)
        let length = r.required(f, "for", positiveDuration)
        let rate = r.required(f, "rate", loadRate)
        guard let at, let length, let rate else { return nil }
        return LoadSpike(at: at, duration: length, rate: rate)
    }

    func ramp(_ node: Node, _ path: NodePath) -> LoadRamp? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.ramp) else { return nil }
        let from = r.required(f, "from", loadRate)
        let to = r.required(f, "to", loadRate)
        let over = r.required(f, "over", positiveDuration)
        guard let from, let to, let over else { return nil }
        return LoadRamp(from: from, to: to, over: over)
    }

    func http(_ node: Node, _ path: NodePath) -> HTTPCheck? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.http) else { return nil }
        let url = r.required(f, "url", r.url)
        let method = r.optional(f, "method") { node, path -> String? in
            guard let text = r.nonEmptyString(node, path) else { return nil }
            guard text.allSatisfy({ $0.isASCII && ($0.isLetter || $0 == "-") }) else {
                r.error("invalid HTTP method '\(text)'", at: node, path)
                return nil
            }
            return text.uppercased()
        }
        let headers = r.optional(f, "headers", r.stringMap)
        let body = r.optional(f, "body", r.string)
        let timeout = r.optional(f, "timeout", positiveDuration)
        let expect = r.optional(f, "expect") { node, path -> HTTPExpectation? in
            guard let e = r.fields(node, path, allowed: ScenarioSchema.httpExpect) else { return nil }
            let status = r.optional(e, "status") { node, path in
                r.listOrOne(node, path, r.value(StatusMatcher.self, what: "a status code or class"))
            }
            let contains = r.optional(e, "bodyContains", r.string)
            return HTTPExpectation(status: status ?? [.statusClass(2)], bodyContains: contains)
        }
        guard let url else { return nil }
        return HTTPCheck(url: url, method: method ?? "GET", headers: headers, body: body,
                         timeout: timeout ?? .seconds(2), expect: expect ?? HTTPExpectation())
    }

    func tcp(_ node: Node, _ path: NodePath) -> TCPCheck? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.tcp) else { return nil }
        let address = r.required(f, "address", hostPort)
        let timeout = r.optional(f, "timeout", positiveDuration)
        let expect = r.optional(f, "expect", r.choice(TCPCheck.Expectation.self, what: "expectation"))
        guard let address else { return nil }
        return TCPCheck(address: address, timeout: timeout ?? .seconds(2), expect: expect ?? .connected)
    }

    /// `host:port` or `[v6]:port`.
    func hostPort(_ node: Node, _ path: NodePath) -> String? {
        guard let text = r.nonEmptyString(node, path) else { return nil }
        let host: String
        let port: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") {
            host = String(text[text.index(after: text.startIndex)..<close])
            port = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = String(text[..<colon])
            port = text[text.index(after: colon)...]
        } else {
            r.error("invalid address '\(text)': use host:port, like 127.0.0.1:5432 or [::1]:5432", at: node, path)
            return nil
        }
        guard let number = Int(port), (1...65535).contains(number) else {
            r.error("invalid port in address '\(text)': use 1–65535", at: node, path)
            return nil
        }
        do { _ = try HostSpec(parsing: host) } catch {
            r.error("invalid host in address '\(text)': \(error.message)", at: node, path)
            return nil
        }
        return text
    }

    func command(_ node: Node, _ path: NodePath) -> CommandCheck? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.command) else { return nil }
        let argv = r.required(f, "argv") { node, path in r.list(node, path, allowEmpty: false, r.string) }
        let timeout = r.optional(f, "timeout", positiveDuration)
        let expect = r.optional(f, "expect") { node, path -> CommandCheck.Expectation? in
            guard let e = r.fields(node, path, allowed: ScenarioSchema.commandExpect) else { return nil }
            let code = r.optional(e, "exitCode") { node, path in r.int(node, path, range: 0...255) }
            return CommandCheck.Expectation(exitCode: Int32(code ?? 0))
        }
        if let first = argv?.first, first.isEmpty, case .sequence(let items)? = f["argv"] {
            r.error("the program name is empty", at: items.first, path.key("argv").index(0))
            return nil
        }
        guard let argv else { return nil }
        return CommandCheck(argv: argv, timeout: timeout ?? .seconds(5), expect: expect ?? .init())
    }

    func prometheus(_ node: Node, _ path: NodePath) -> PrometheusCheck? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.prometheus) else { return nil }
        let url = r.required(f, "url", r.url)
        let query = r.required(f, "query", r.nonEmptyString)
        let timeout = r.optional(f, "timeout", positiveDuration)
        let expect = r.required(f, "expect") { node, path -> PrometheusCheck.Expectation? in
            guard let e = r.fields(node, path, allowed: ScenarioSchema.prometheusExpect) else { return nil }
            let given = ScenarioSchema.prometheusExpect.filter(e.has)
            guard given.count == 1, let key = given.first else {
                r.error(given.isEmpty ? "expect needs one of below, above, equals" : "give one of below, above, equals, not \(given.joined(separator: " and "))",
                        at: node, path)
                return nil
            }
            guard let value = r.number(e[key]!, path.key(key)) else { return nil }
            switch key {
            case "below": return .below(value)
            case "above": return .above(value)
            default: return .equals(value)
            }
        }
        if let url, let node = f["url"], Self.hasUserInfo(url) {
            r.error("credentials in the URL would sit in the scenario: give them with basicAuth (password from a file or the environment)",
                    at: node, path.key("url"))
            return nil
        }
        if f.has("bearerToken"), f.has("basicAuth") {
            r.error("give one of bearerToken and basicAuth, not both", at: node, path)
            return nil
        }
        var auth: PrometheusAuth?
        if let node = f["bearerToken"] {
            guard let source = secret(node, path.key("bearerToken")) else { return nil }
            auth = .bearer(source)
        } else if let node = f["basicAuth"] {
            guard let basic = r.fields(node, path.key("basicAuth"), allowed: ScenarioSchema.basicAuth) else { return nil }
            let username = r.required(basic, "username", r.nonEmptyString)
            let password = r.required(basic, "password", secret)
            if let username, username.contains(":") {
                r.error("a basic-auth username cannot contain ':'", at: basic["username"], path.key("basicAuth").key("username"))
                return nil
            }
            guard let username, let password else { return nil }
            auth = .basic(username: username, password: password)
        }
        guard let url, let query, let expect else { return nil }
        return PrometheusCheck(url: url, query: query, timeout: timeout ?? .seconds(2), expect: expect, auth: auth)
    }

    /// True when an http(s) URL carries `user[:password]@` before its host.
    static func hasUserInfo(_ url: String) -> Bool {
        guard let scheme = url.range(of: "://") else { return false }
        let authority = url[scheme.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return authority.contains("@")
    }

    /// `{file: /abs/path}` or `{env: NAME}`: where a secret is read when the probe runs. A secret written inline is refused.
    func secret(_ node: Node, _ path: NodePath) -> SecretSource? {
        if case .scalar = node {
            r.error("a secret is not written in the scenario: give {file: PATH} or {env: NAME} to read it from", at: node, path)
            return nil
        }
        guard let f = r.fields(node, path, allowed: ScenarioSchema.secret) else { return nil }
        let given = ScenarioSchema.secret.filter(f.has)
        guard given.count == 1 else {
            r.error(given.isEmpty ? "give file or env" : "give one of file and env, not both", at: node, path)
            return nil
        }
        if f.has("file") {
            guard let file = r.required(f, "file", absolutePath) else { return nil }
            return .file(file)
        }
        guard let name = r.required(f, "env", r.nonEmptyString) else { return nil }
        let valid = name.unicodeScalars.first.map { $0 == "_" || ($0.isASCII && $0.properties.isAlphabetic) } == true
            && name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
        guard valid else {
            r.error("'\(name)' is not an environment variable name (letters, digits and _, not starting with a digit)", at: f["env"], path.key("env"))
            return nil
        }
        return .environment(name)
    }

    func slo(_ node: Node, _ path: NodePath) -> SLO? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.slo) else { return nil }
        let objective = r.required(f, "objective") { node, path -> Percent? in
            guard let value = percent(node, path) else { return nil }
            guard value.value > 0 else { r.error("objective must be above 0%", at: node, path); return nil }
            return value
        }
        let latency = r.optional(f, "latency", positiveDuration)
        guard let objective else { return nil }
        return SLO(objective: objective, latency: latency)
    }

    func abortWhen(_ node: Node, _ path: NodePath) -> AbortConditions? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.abortWhen) else { return nil }
        if f.isEmpty {
            r.error("abortWhen needs consecutiveFailures or burnRate", at: node, path)
            return nil
        }
        let failures = r.optional(f, "consecutiveFailures") { node, path in r.int(node, path, range: 1...1_000_000) }
        let burnRate = r.optional(f, "burnRate") { node, path -> BurnRate? in
            guard let b = r.fields(node, path, allowed: ScenarioSchema.burnRate) else { return nil }
            let factor = r.required(b, "factor", r.positiveNumber)
            let window = r.required(b, "window", positiveDuration)
            guard let factor, let window else { return nil }
            return BurnRate(factor: factor, window: window)
        }
        return AbortConditions(consecutiveFailures: failures, burnRate: burnRate)
    }
}
