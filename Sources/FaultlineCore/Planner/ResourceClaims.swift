/// What faults act on, in words that compare across runs: an interface in a namespace, a directory, a process.
/// A fault left in place by an earlier run (its revert failed) blocks only a new run that claims the same thing.
public enum ResourceClaims {
    /// The namespace part of a claim: its identity when known (the same namespace under any name), else its path.
    static func namespaceKey(identity: NamespaceIdentity?, path: String?) -> String {
        if let identity { return identity.description }
        return path ?? "this host's namespace"
    }

    /// What each fault of `scenario`, as planned, would act on (by fault name); process faults claim the processes
    /// that match now (from `facts`).
    public static func of(_ scenario: Scenario, plan: Plan, facts: HostFacts) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        for (fault, planned) in zip(scenario.spec.faults, plan.faults) {
            var claims: Set<String> = []
            switch fault.action {
            case .diskFill(let fill):
                // A container's directory by the container and the path inside it (its /proc/PID/root changes).
                if let found = (fault.target ?? scenario.spec.target)?.container?.found {
                    claims.insert("directory \(directory(fill.path)) in container \(found.id)")
                } else {
                    claims.insert("directory \(directory(fill.path))")
                }
            case .pauseProcess, .killProcess:
                for process in facts.processMatches[planned.name] ?? [] { claims.insert("process \(process.pid) (started \(process.startTime))") }
            default:
                for check in planned.checks {
                    guard let (path, device) = interface(of: check) else { continue }
                    let key = planned.namespace.map { namespaceKey(identity: $0.identity, path: $0.source) }
                        ?? namespaceKey(identity: facts.namespace(fault.target ?? scenario.spec.target)?.identity, path: path)
                    claims.insert("interface \(device) in \(key)")
                }
            }
            result[planned.name] = claims
        }
        return result
    }

    /// What a journalled fault that may still be in place holds; `identify` tells the identity of the namespace at a
    /// path, for records written without a pin.
    public static func of(_ record: RevertRecord, identify: (String) -> NamespaceIdentity? = { _ in nil }) -> Set<String> {
        of(record, namespace: nil, identify: identify)
    }

    static func of(_ record: RevertRecord, namespace pin: PinnedNamespace?, identify: (String) -> NamespaceIdentity?) -> Set<String> {
        switch record {
        case .commands(_, let checks):
            return Set(checks.compactMap { check in
                guard let (path, device) = interface(of: check) else { return nil }
                let key = pin.map { namespaceKey(identity: $0.identity, path: $0.source) }
                    ?? namespaceKey(identity: path.flatMap(identify), path: path)
                return "interface \(device) in \(key)"
            })
        case .resume(let processes):
            return Set(processes.map { "process \($0.pid) (started \($0.startTime))" })
        case .removeFile(let path):
            return ["directory \(directory((path as String).split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")))"]
        case .steps(let steps):
            return steps.reduce(into: Set<String>()) { $0.formUnion(of($1, namespace: pin, identify: identify)) }
        case .inNamespace(let pinned, let inner):
            return of(inner, namespace: pinned, identify: identify)
        case .stopProcess, .signalled:
            return []
        }
    }

    /// The namespace path and the interface (with "ingress" for the ingress side) a tc check stands for.
    static func interface(of check: StateCheck) -> (path: String?, device: String)? {
        switch check {
        case .rootQdisc(let path, let device, _): (path, device)
        case .ingress(let path, let device, _): (path, device + " ingress")
        case .chain: nil
        }
    }

    /// A directory path without a trailing slash (`/` stays `/`).
    static func directory(_ path: String) -> String {
        path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : (path.isEmpty ? "/" : path)
    }
}
