extension Scenario {
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
