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
