import Yams

/// Decodes a composed YAML document into the scenario model, checking every rule of format v1.
struct ScenarioDecoder {
    let r: NodeReader

    init(reader: NodeReader) { r = reader }

    func scenario(_ node: Node) -> Scenario? {
        guard let f = r.fields(node, .root, allowed: ScenarioSchema.root, what: "a mapping at the top of the file") else { return nil }
        let version = r.required(f, "apiVersion", r.string)
        if let version, version != Scenario.apiVersion {
            r.error("unsupported apiVersion '\(version)' (this faultline reads '\(Scenario.apiVersion)')", at: f["apiVersion"], f.path.key("apiVersion"))
        }
        let kind = r.required(f, "kind", r.string)
        if let kind, kind != Scenario.kind {
            r.error("unknown kind '\(kind)' (expected '\(Scenario.kind)')", at: f["kind"], f.path.key("kind"))
        }
        let metadata = r.required(f, "metadata", self.metadata)
        let spec = r.required(f, "spec", self.spec)
        guard version == Scenario.apiVersion, kind == Scenario.kind, let metadata, let spec else { return nil }
        return Scenario(metadata: metadata, spec: spec)
    }

    func metadata(_ node: Node, _ path: NodePath) -> Metadata? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.metadata) else { return nil }
        let name = r.required(f, "name", r.value(ResourceName.self, what: "a name"))
        let description = r.optional(f, "description", r.string)
        let owner = r.optional(f, "owner", r.string)
        let runbook = r.optional(f, "runbook", r.url)
        let labels = r.optional(f, "labels", r.stringMap)
        guard let name else { return nil }
        return Metadata(name: name, description: description, owner: owner, runbook: runbook, labels: labels)
    }

    func spec(_ node: Node, _ path: NodePath) -> ScenarioSpec? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.spec) else { return nil }
        let maxDuration = r.required(f, "maxDuration", positiveDuration)
        let target = r.optional(f, "target", self.target)
        let steadyState = r.optional(f, "steadyState", self.steadyState)
        let notify = r.optional(f, "notify") { node, path in r.list(node, path, notifyHook) }
        let faults = r.required(f, "faults") { node, path in
            self.faults(node, path, maxDuration: maxDuration, defaultTarget: target)
        }
        if let faults { checkDuring(f["steadyState"], path.key("steadyState"), faults: faults) }
        guard let maxDuration, let faults else { return nil }
        return ScenarioSpec(maxDuration: maxDuration, target: target, steadyState: steadyState, notify: notify, faults: faults)
    }

    /// A probe's `during` must name one of the scenario's faults.
    func checkDuring(_ steadyState: Node?, _ path: NodePath, faults: [Fault]) {
        guard case .sequence(let probes)? = steadyState?["probes"] else { return }
        let names = Set(faults.map(\.name.rawValue))
        for (index, probe) in probes.enumerated() {
            guard let node = probe["during"], case .scalar(let scalar) = node, !names.contains(scalar.string) else { continue }
            r.error("during '\(scalar.string)' is not a fault of this scenario (faults: \(faults.map(\.name.rawValue).joined(separator: ", ")))",
                    at: node, path.key("probes").index(index).key("during"))
        }
    }

    // MARK: Values

    var duration: (Node, NodePath) -> TimeSpan? { r.value(TimeSpan.self, what: "a duration") }
    var percent: (Node, NodePath) -> Percent? { r.value(Percent.self, what: "a percentage") }
    var bytes: (Node, NodePath) -> ByteCount? { r.value(ByteCount.self, what: "a size") }

    func positiveDuration(_ node: Node, _ path: NodePath) -> TimeSpan? {
        guard let value = duration(node, path) else { return nil }
        guard value > .zero else { r.error("must be longer than 0s", at: node, path); return nil }
        return value
    }

    func target(_ node: Node, _ path: NodePath) -> NetnsTarget? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.target) else { return nil }
        if f["pod"] != nil { return pod(f, path) }
        if let mode = f.keyNodes["mode"] {
            r.error("'mode' goes with 'pod' (which of the pods that match a fault hits)", at: mode, path)
            return nil
        }
        let given = ["netns", "pid", "container"].filter { f[$0] != nil }
        for key in ["runtime", "namespace"] where f[key] != nil && f["container"] == nil {
            r.error("'\(key)' goes with 'container' (target: {container: NAME, \(key): ...})", at: f.keyNodes[key], path)
            return nil
        }
        guard given.count == 1 else {
            if given.isEmpty {
                r.error("a target needs 'netns' (a name, an absolute path or pid:<N>), 'pid' or 'container'", at: node, path)
            } else {
                r.error("give one of 'netns', 'pid' or 'container', not \(given.map { "'\($0)'" }.joined(separator: " and "))", at: f.keyNodes[given[1]], path)
            }
            return nil
        }
        if let netns = f["netns"] {
            guard let text = r.nonEmptyString(netns, path.key("netns")) else { return nil }
            do { return try NetnsTarget(netns: text) } catch { r.error(error.message, at: netns, path.key("netns")) }
        } else if let pid = f["pid"] {
            guard let text = r.scalarText(pid, path.key("pid"), what: "a process id") else { return nil }
            do { return try NetnsTarget(pid: text) } catch { r.error(error.message, at: pid, path.key("pid")) }
        } else if let node = f["container"] {
            return container(node, f, path)
        }
        return nil
    }

    /// `pod: {namespace:, name: | labels:}` with its optional `container` and `mode`.
    func pod(_ f: Fields, _ path: NodePath) -> NetnsTarget? {
        for key in ["netns", "pid", "namespace"] where f[key] != nil {
            r.error(key == "namespace" ? "a pod's namespace goes in pod.namespace" : "give one of 'netns', 'pid', 'container' or 'pod', not 'pod' and '\(key)'",
                    at: f.keyNodes[key], path)
            return nil
        }
        if let node = f["runtime"], let runtime = r.choice(ContainerRuntime.self, what: "container runtime")(node, path.key("runtime")), runtime != .containerd {
            r.error("pods are found through the node's containerd, else its Docker API (cri-dockerd): leave 'runtime' out, or write containerd; runtime \(runtime.rawValue) is not for pods", at: node, path.key("runtime"))
            return nil
        }
        guard let node = f["pod"], let p = r.fields(node, path.key("pod"), allowed: ScenarioSchema.pod) else { return nil }
        func name(_ key: String, _ node: Node, _ path: NodePath, what: String) -> String? {
            guard let text = r.nonEmptyString(node, path) else { return nil }
            do { return try PodRef.validName(text, what: what) } catch { r.error(error.message, at: node, path); return nil }
        }
        let namespace = r.required(p, "namespace") { name("namespace", $0, $1, what: "Kubernetes namespace") }
        let podName = r.optional(p, "name") { name("name", $0, $1, what: "pod name") }
        let labels = r.optional(p, "labels", r.stringMap)
        switch (p["name"], p["labels"]) {
        case (nil, nil):
            r.error("a pod target needs 'name' or 'labels'", at: node, path.key("pod"))
            return nil
        case (.some, .some):
            r.error("give either 'name' or 'labels', not both", at: p.keyNodes["labels"], path.key("pod"))
            return nil
        default: break
        }
        if let labels, labels.isEmpty {
            r.error("'labels' needs at least one label", at: p["labels"], path.key("pod").key("labels"))
            return nil
        }
        let container = r.optional(f, "container") { name("container", $0, $1, what: "container name") }
        var mode = PodMode.one
        if let node = f["mode"] {
            guard let parsed = podMode(node, path.key("mode")) else { return nil }
            mode = parsed
        }
        guard let namespace, p["name"] == nil || podName != nil, p["labels"] == nil || labels != nil, f["container"] == nil || container != nil else { return nil }
        return .pod(PodRef(namespace: namespace, name: podName, labels: labels, container: container, mode: mode))
    }

    /// `one`, `all`, `{fixed: N}` or `{percent: P}`.
    func podMode(_ node: Node, _ path: NodePath) -> PodMode? {
        if case .scalar(let scalar) = node {
            switch scalar.string {
            case "one": return .one
            case "all": return .all
            default:
                r.error("unknown mode '\(scalar.string)' (use one, all, {fixed: N} or {percent: P})", at: node, path)
                return nil
            }
        }
        guard let m = r.fields(node, path, allowed: ["fixed", "percent"]) else { return nil }
        if let fixed = m["fixed"] {
            guard let text = r.scalarText(fixed, path.key("fixed"), what: "a number of pods"), let n = Int(text), n > 0 else {
                r.error("fixed needs a number of pods above 0", at: fixed, path.key("fixed"))
                return nil
            }
            return .fixed(n)
        }
        if let share = m["percent"], let value = percent(share, path.key("percent")) {
            guard value.value > 0 else { r.error("must be above 0%", at: share, path.key("percent")); return nil }
            return .percent(value)
        }
        if m["percent"] == nil { r.error("a mode mapping needs 'fixed' or 'percent'", at: node, path) }
        return nil
    }

    /// `container: NAME` with its optional `runtime` and (for containerd) `namespace`.
    func container(_ node: Node, _ f: Fields, _ path: NodePath) -> NetnsTarget? {
        guard let text = r.scalarText(node, path.key("container"), what: "a container name or id") else { return nil }
        let name: String
        do { name = try ContainerRef.validName(text) } catch {
            r.error(error.message, at: node, path.key("container"))
            return nil
        }
        let runtime = r.optional(f, "runtime", r.choice(ContainerRuntime.self, what: "container runtime"))
        var namespace: String?
        if let node = f["namespace"], let text = r.nonEmptyString(node, path.key("namespace")) {
            if let runtime, runtime != .containerd {
                r.error("'namespace' is containerd's (like k8s.io); \(runtime.rawValue) has none", at: node, path.key("namespace"))
                return nil
            }
            do { namespace = try ContainerRef.validNamespace(text) } catch {
                r.error(error.message, at: node, path.key("namespace"))
                return nil
            }
        }
        if f["runtime"] != nil, runtime == nil { return nil }
        // A containerd namespace says which runtime to ask.
        return .container(ContainerRef(name: name, runtime: runtime ?? (namespace != nil ? .containerd : nil), namespace: namespace))
    }

    func notifyHook(_ node: Node, _ path: NodePath) -> NotifyHook? {
        guard let f = r.fields(node, path, allowed: ScenarioSchema.notify) else { return nil }
        let url = r.required(f, "url", r.url)
        let events = r.optional(f, "events") { node, path in
            r.list(node, path, allowEmpty: false, r.choice(NotifyHook.Event.self, what: "event"))
        }
        guard let url else { return nil }
        return NotifyHook(url: url, events: events ?? NotifyHook.Event.allCases)
    }
}
