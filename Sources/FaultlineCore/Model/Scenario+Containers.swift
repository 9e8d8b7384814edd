extension Scenario {
    /// Whether a target is a container or pods: found through a runtime when the run starts.
    public var namesContainers: Bool { !containers.isEmpty || !pods.isEmpty }

    /// The containers the scenario names (its default target and each fault's), each once, in order.
    public var containers: [ContainerRef] {
        var result: [ContainerRef] = []
        for ref in ([spec.target] + spec.faults.map(\.target)).compactMap({ $0?.container }) where !result.contains(ref) {
            result.append(ref)
        }
        return result
    }

    /// The scenario with each container target as found (`found`, by the container as written): its network
    /// faults and probes act in the container's network namespace, its process faults match only the container's
    /// processes. Containers not in `found` stay as written (a run refuses them).
    public func withContainers(_ found: [ContainerRef: FoundContainer]) -> Scenario {
        func resolved(_ target: NetnsTarget?) -> NetnsTarget? {
            guard case .container(var ref)? = target, let container = found[ref] else { return target }
            ref.found = container
            return .container(ref)
        }
        var copy = self
        copy.spec.target = resolved(spec.target)
        copy.spec.faults = spec.faults.map { fault in
            var fault = fault
            let target = fault.target
            fault.target = resolved(target)
            guard let ref = resolved(target ?? spec.target)?.container, let container = ref.found,
                  let pidNamespace = container.pidNamespace else { return fault }
            let scope = ContainerScope(container: ref.description, pidNamespace: pidNamespace, root: container.root)
            switch fault.action {
            case .killProcess(var kill):
                kill.match.container = scope
                fault.action = .killProcess(kill)
            case .pauseProcess(var pause):
                pause.match.container = scope
                fault.action = .pauseProcess(pause)
            default: break
            }
            return fault
        }
        return copy
    }
}

extension Scenario {
    /// The pod targets the scenario names, each once, in order.
    public var pods: [PodRef] {
        var result: [PodRef] = []
        for ref in ([spec.target] + spec.faults.map(\.target)).compactMap({ $0?.pod }) where !result.contains(ref) {
            result.append(ref)
        }
        return result
    }

    /// The scenario with each pod target replaced by the containers chosen for it (`chosen`, by the pod target as
    /// written): a fault whose pods are several becomes one fault per pod, named `NAME-1`, `NAME-2`, ... in the
    /// order given; the default target becomes the first pod's container (where the probes run). Pod targets with
    /// nothing chosen stay as written (a run refuses them).
    public func withPods(_ chosen: [PodRef: [FoundContainer]]) -> Scenario {
        func container(_ found: FoundContainer) -> NetnsTarget {
            .container(ContainerRef(name: found.name, runtime: found.runtime, namespace: "k8s.io", found: found))
        }
        var copy = self
        if let ref = spec.target?.pod, let first = chosen[ref]?.first { copy.spec.target = container(first) }
        var renamed: [ResourceName: ResourceName] = [:]
        copy.spec.faults = spec.faults.flatMap { fault -> [Fault] in
            guard let ref = (fault.target ?? spec.target)?.pod, let pods = chosen[ref], !pods.isEmpty else { return [fault] }
            return pods.enumerated().map { index, found in
                var one = fault
                if pods.count > 1, let name = try? ResourceName(parsing: "\(fault.name.rawValue)-\(index + 1)") {
                    one.name = name
                    if index == 0 { renamed[fault.name] = name }
                }
                one.target = container(found)
                return one
            }
        }
        // A probe that runs during a fault that became several runs during the first: they share one window.
        if var steady = copy.spec.steadyState {
            steady.probes = steady.probes.map { probe in
                var probe = probe
                if let during = probe.during, let name = renamed[during] { probe.during = name }
                return probe
            }
            copy.spec.steadyState = steady
        }
        return copy
    }
}
