/// The container runtimes a container target is found through.
public enum ContainerRuntime: String, Sendable, Hashable, Codable, CaseIterable {
    /// The Docker Engine API on dockerd's socket.
    case docker
    /// The Docker-compatible API of `podman system service`.
    case podman
    /// containerd, through `ctr`.
    case containerd
}

/// A container as a scenario names it (`target: {container: checkout}`): found through its runtime each time a run
/// starts (or a schedule fires), since its PID changes with every restart.
public struct ContainerRef: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Its name or id (a unique prefix of the id, for docker and podman).
    public var name: String
    /// The runtime to ask; nil: the first runtime whose socket is there and that knows the name.
    public var runtime: ContainerRuntime?
    /// containerd's namespace (`k8s.io` on a Kubernetes node); nil: `default`.
    public var namespace: String?
    /// What the runtime said when the run started; nil until then.
    public var found: FoundContainer?

    public init(name: String, runtime: ContainerRuntime? = nil, namespace: String? = nil, found: FoundContainer? = nil) {
        self.name = name
        self.runtime = runtime
        self.namespace = namespace
        self.found = found
    }

    /// Validates a container name or id: 1-253 characters, letters, digits, `_`, `.` and `-`, starting with a letter or digit.
    public static func validName(_ text: String) throws(ValueError) -> String {
        guard !text.isEmpty, text.count <= 253, text.first.map({ $0.isASCII && ($0.isLetter || $0.isNumber) }) == true,
              text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
            throw ValueError("invalid container name '\(text)': use its name or id (letters, digits, '_', '.' and '-', starting with a letter or digit)")
        }
        return text
    }

    /// Validates a containerd namespace: 1-76 characters, letters, digits, `_`, `.` and `-`, starting with a letter or digit.
    public static func validNamespace(_ text: String) throws(ValueError) -> String {
        guard !text.isEmpty, text.count <= 76, text.first.map({ $0.isASCII && ($0.isLetter || $0.isNumber) }) == true,
              text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) else {
            throw ValueError("invalid containerd namespace '\(text)': use letters, digits, '_', '.' and '-', like k8s.io")
        }
        return text
    }

    /// `container checkout`, and once found `container checkout (podman 3f2a1b9c4d5e, pid 4242)`.
    public var description: String {
        var text = "container \(name)"
        if let pod = found?.pod { text = "container \(found?.name ?? name) of pod \(pod)" }
        if let found { text += " (\(found.runtime.rawValue) \(found.shortID), pid \(found.pid))" }
        return text
    }
}

/// A container as its runtime described it when the run started, and the kernel objects it lives in.
public struct FoundContainer: Sendable, Hashable, Codable {
    public var runtime: ContainerRuntime
    /// The runtime's socket it was found through.
    public var socket: String
    /// The full id.
    public var id: String
    /// Its name (docker and podman), or its id (containerd).
    public var name: String
    /// The PID of its main process, as this host sees it.
    public var pid: Int32
    /// Its main process's start time (clock ticks after boot): with the pid, the process found.
    public var startTime: UInt64?
    /// The identity (inode) of its PID namespace: process faults match only processes in it.
    public var pidNamespace: UInt64?
    /// The pod it belongs to (`shop/checkout-7d9f`), for a pod target.
    public var pod: String?
    /// Its cgroup, per hierarchy (`cpu,cpuacct` → `/sys/fs/cgroup/cpu,cpuacct/...`; the unified one under its own
    /// path): stress runs in these so it counts against the container's limits.
    public var cgroups: [String] = []

    public init(runtime: ContainerRuntime, socket: String, id: String, name: String, pid: Int32, startTime: UInt64? = nil,
                pidNamespace: UInt64? = nil, cgroups: [String] = []) {
        self.runtime = runtime
        self.socket = socket
        self.id = id
        self.name = name
        self.pid = pid
        self.startTime = startTime
        self.pidNamespace = pidNamespace
        self.cgroups = cgroups
    }

    /// The first 12 characters of the id, as docker shows it.
    public var shortID: String { String(id.prefix(12)) }

    /// Its root filesystem as this host reaches it: paths inside the container are under it.
    public var root: String { "/proc/\(pid)/root" }
}

/// Which of the pods that match a pod target a fault hits (Chaos Mesh's selector modes).
public enum PodMode: Sendable, Hashable, Codable, CustomStringConvertible {
    /// One of them, at random (the default: the smallest blast radius).
    case one
    /// Every one.
    case all
    /// This many, at random (all when fewer match).
    case fixed(Int)
    /// This share of them, at random, rounded down but at least one.
    case percent(Percent)

    /// How many of `count` matches are hit.
    public func count(of matches: Int) -> Int {
        switch self {
        case .one: min(1, matches)
        case .all: matches
        case .fixed(let n): min(n, matches)
        case .percent(let share): matches == 0 ? 0 : max(1, min(matches, Int((Double(matches) * share.fraction).rounded(.down))))
        }
    }

    public var description: String {
        switch self {
        case .one: "one"
        case .all: "all"
        case .fixed(let n): "fixed \(n)"
        case .percent(let share): "percent \(share)"
        }
    }
}

/// Pods on this node as a scenario names them (`target: {pod: {namespace: shop, labels: {app: checkout}}, container: web}`),
/// found through the node's containerd (namespace `k8s.io`) from the labels the kubelet sets.
public struct PodRef: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The Kubernetes namespace.
    public var namespace: String
    /// The pod's name; or nil, and `labels` select.
    public var name: String?
    /// Pod labels that must all match (on the pod's sandbox).
    public var labels: [String: String]?
    /// The container in the pod (`io.kubernetes.container.name`); nil: the pod's sandbox (its network namespace,
    /// which every container of the pod shares).
    public var container: String?
    public var mode: PodMode = .one

    public init(namespace: String, name: String? = nil, labels: [String: String]? = nil, container: String? = nil, mode: PodMode = .one) {
        self.namespace = namespace
        self.name = name
        self.labels = labels
        self.container = container
        self.mode = mode
    }

    /// `pod shop/checkout-0 container web`, `pods in shop with app=checkout (one)`.
    public var description: String {
        let which = name.map { "pod \(namespace)/\($0)" }
            ?? "pods in \(namespace) with \((labels ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ","))"
        return which + (container.map { " container \($0)" } ?? "") + (name == nil ? " (\(mode))" : "")
    }

    /// Validates a Kubernetes name (namespace, pod, container): a DNS subdomain, 1-253 characters.
    public static func validName(_ text: String, what: String) throws(ValueError) -> String {
        guard !text.isEmpty, text.count <= 253, text.first.map({ $0.isASCII && ($0.isLowercase || $0.isNumber) }) == true,
              text.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-.".contains($0)) }) else {
            throw ValueError("invalid \(what) '\(text)': use lowercase letters, digits, '-' and '.', as Kubernetes does")
        }
        return text
    }
}
