/// What the planner knows about the host, read beforehand by FaultlineSystem and passed in as values.
public struct HostFacts: Sendable, Hashable, Codable {
    /// Network facts per target; the entry with a nil target is the agent's own namespace.
    public var namespaces: [NamespaceFacts] = []
    /// The agent's API port when running as an agent (exempt from network faults in the agent's own namespace).
    public var agentPort: UInt16?
    /// The identity of this process's own network namespace: a target with the same identity is the agent's own
    /// namespace, however it is named (a path, a name, a pid of a process beside the agent).
    public var ownNamespace: NamespaceIdentity?
    /// TCP ports of SSH (exempt from network faults).
    public var sshPorts: [UInt16] = [22]
    /// Whether the kernel has sch_netem; nil when it could not be told.
    public var netemAvailable: Bool?
    /// Whether the kernel can queue packets to userspace (nfnetlink_queue and the NFQUEUE target); nil when it could not be told.
    public var nfqueueAvailable: Bool?
    /// Host names of the scenario's filters, resolved once.
    public var resolvedHosts: [String: HostResolution] = [:]
    /// Online CPUs (the default number of cpu-stress workers).
    public var cpuCount: Int?
    /// The path of the faultline executable, for the stress child processes.
    public var executable: String = "faultline"
    /// The processes each process fault's match selects now (by fault name); absent when not read.
    public var processMatches: [String: [ProcessIdentity]] = [:]
    /// Why a container target was not found (by the container as written, `container NAME`).
    public var containerProblems: [String: String] = [:]
    /// Each disk-fill fault's directory inside its container, as this host reaches it (by fault name): the
    /// container's path resolved inside its root (its own links stay inside it).
    public var containerPaths: [String: String] = [:]
    /// Disk-fill faults whose directory in a container takes its room from this host's disks (its root filesystem,
    /// or the container's overlay layer), by fault name: which, in words.
    public var containerPathsOnHostDisk: [String: String] = [:]
    /// Facts that could not be read, with the reason, for the plan to show.
    public var unreadable: [String] = []

    public init() {}

    /// Whether `target` is the namespace this process (the agent) lives in: no target, or one with the same identity.
    public func isOwnNamespace(_ target: NetnsTarget?) -> Bool {
        guard let target else { return true }
        guard let own = ownNamespace, let identity = namespace(target)?.identity else { return false }
        return identity == own
    }

    /// The facts of one target's namespace, if read.
    public func namespace(_ target: NetnsTarget?) -> NamespaceFacts? {
        namespaces.first { $0.target == target }
    }
}

/// The result of resolving a host name.
public enum HostResolution: Sendable, Hashable, Codable {
    case addresses([IPNetwork])
    case failed(String)
}

/// Interfaces and root qdiscs of one network namespace.
public struct NamespaceFacts: Sendable, Hashable, Codable {
    public var target: NetnsTarget?
    /// Interface names; nil when they could not be read.
    public var interfaces: [String]?
    /// The current root qdisc of each interface.
    public var rootQdiscs: [String: RootQdisc] = [:]
    /// The kind (ingress or clsact) of each interface's ingress qdisc, where it has one.
    public var ingressQdiscs: [String: String]? = nil
    /// Why this namespace could not be read, if it could not.
    public var unreadable: String?
    /// False when the namespace is known not to exist.
    public var exists: Bool = true
    /// Its identity when read; the pin the run will hold it by (commands enter through it), when the run pins.
    public var identity: NamespaceIdentity?
    public var pin: PinnedNamespace?
    /// Ports a socket listens on (TCP) or is bound to (UDP) in it; nil when they could not be read.
    public var listeningPorts: [UInt16]?
    /// Its interfaces' addresses (without prefix length); nil when they could not be read.
    public var addresses: [String]?

    public init(target: NetnsTarget?, interfaces: [String]? = nil, rootQdiscs: [String: RootQdisc] = [:], unreadable: String? = nil, exists: Bool = true) {
        self.target = target
        self.interfaces = interfaces
        self.rootQdiscs = rootQdiscs
        self.unreadable = unreadable
        self.exists = exists
    }
}

/// An interface's root qdisc as found before a fault, so revert can put it back.
public struct RootQdisc: Sendable, Hashable, Codable {
    public var kind: String
    /// `0:` for the kernel's default qdisc.
    public var handle: String
    /// tc arguments that recreate it (`fq_codel limit 10240 ...`); nil when it cannot be rebuilt exactly.
    public var restoreArguments: [String]?

    public init(kind: String, handle: String, restoreArguments: [String]? = nil) {
        self.kind = kind
        self.handle = handle
        self.restoreArguments = restoreArguments
    }

    /// The kernel's own default root (handle 0:), which deleting the root brings back.
    public var isKernelDefault: Bool { handle == "0:" }
}
