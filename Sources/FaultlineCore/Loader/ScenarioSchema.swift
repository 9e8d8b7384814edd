/// The keys each mapping of a scenario may hold: the loader's allow-lists and the docs' checklist.
public enum ScenarioSchema {
    static let root = ["apiVersion", "kind", "metadata", "spec"]
    static let metadata = ["name", "description", "owner", "runbook", "labels"]
    static let spec = ["maxDuration", "target", "steadyState", "notify", "faults"]
    static let target = ["netns", "pid", "container", "runtime", "namespace", "pod", "mode"]
    static let pod = ["namespace", "name", "labels"]
    static let podMode = ["fixed", "percent"]
    static let steadyState = ["probes", "slo", "abortWhen", "recoveryWindow"]
    static let probeKinds = ["http", "tcp", "command", "prometheus"]
    static let probe = ["name", "interval"] + probeKinds + ["rate", "ramp", "spike", "during"]
    static let http = ["url", "method", "headers", "body", "timeout", "expect"]
    static let httpExpect = ["status", "bodyContains"]
    static let tcp = ["address", "timeout", "expect"]
    static let command = ["argv", "timeout", "expect"]
    static let commandExpect = ["exitCode"]
    static let prometheus = ["url", "query", "timeout", "expect", "bearerToken", "basicAuth"]
    static let secret = ["file", "env"]
    static let basicAuth = ["username", "password"]
    static let prometheusExpect = ["below", "above", "equals"]
    static let ramp = ["from", "to", "over"]
    static let spike = ["at", "for", "rate"]
    static let slo = ["objective", "latency"]
    static let abortWhen = ["consecutiveFailures", "burnRate"]
    static let burnRate = ["factor", "window"]
    static let notify = ["url", "events"]
    static let faultCommon = ["name", "type", "start", "duration", "target"]
    static let filter = ["hosts", "ports", "protocol"]
    static let match = ["pid", "pidFile", "name", "cmdline", "user", "maxMatches"]

    /// The parameters of each fault type, besides the common keys.
    static let faultParameters: [FaultType: [String]] = [
        .latency: ["interface", "delay", "jitter", "correlation", "distribution", "to", "from", "except", "direction", "engine"],
        .packetLoss: ["interface", "percent", "correlation", "to", "from", "except", "direction", "engine"],
        .corrupt: ["interface", "percent", "correlation", "to", "from", "except", "direction"],
        .duplicate: ["interface", "percent", "correlation", "to", "from", "except", "direction"],
        .reorder: ["interface", "percent", "correlation", "gap", "delay", "to", "from", "except", "direction"],
        .bandwidth: ["interface", "rate", "burst", "limit", "to", "from", "except", "direction"],
        .drop: ["direction", "to", "from", "except", "probability", "reject"],
        .killProcess: ["match", "signal", "mode", "every"],
        .pauseProcess: ["match"],
        .diskFill: ["path", "fillTo", "size", "reserve"],
        .cpuStress: ["workers", "load"],
        .memoryStress: ["size", "fillTo"],
    ]

    /// Every key path of the format, like `spec.faults[].delay` or `spec.steadyState.probes[].http.url`.
    public static var allKeyPaths: [String] {
        var paths: [String] = []
        func add(_ prefix: String, _ keys: [String]) { paths += keys.map { prefix.isEmpty ? $0 : "\(prefix).\($0)" } }
        add("", root)
        add("metadata", metadata)
        add("spec", spec)
        add("spec.target", target)
        add("spec.target.pod", pod)
        add("spec.target.mode", podMode)
        add("spec.steadyState", steadyState)
        add("spec.steadyState.probes[]", probe)
        add("spec.steadyState.probes[].http", http)
        add("spec.steadyState.probes[].http.expect", httpExpect)
        add("spec.steadyState.probes[].tcp", tcp)
        add("spec.steadyState.probes[].command", command)
        add("spec.steadyState.probes[].command.expect", commandExpect)
        add("spec.steadyState.probes[].prometheus", prometheus)
        add("spec.steadyState.probes[].prometheus.expect", prometheusExpect)
        add("spec.steadyState.probes[].prometheus.bearerToken", secret)
        add("spec.steadyState.probes[].prometheus.basicAuth", basicAuth)
        add("spec.steadyState.probes[].prometheus.basicAuth.password", secret)
        add("spec.steadyState.probes[].ramp", ramp)
        add("spec.steadyState.probes[].spike", spike)
        add("spec.steadyState.slo", slo)
        add("spec.steadyState.abortWhen", abortWhen)
        add("spec.steadyState.abortWhen.burnRate", burnRate)
        add("spec.notify[]", notify)
        add("spec.faults[]", faultCommon)
        add("spec.faults[].target", target)
        add("spec.faults[].target.pod", pod)
        add("spec.faults[].target.mode", podMode)
        let parameters = Set(faultParameters.values.flatMap { $0 })
        add("spec.faults[]", parameters.sorted())
        add("spec.faults[].to", filter)
        add("spec.faults[].from", filter)
        add("spec.faults[].except", filter)
        add("spec.faults[].match", match)
        return paths
    }
}
