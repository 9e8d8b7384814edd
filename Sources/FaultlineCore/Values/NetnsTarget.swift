/// Where a fault or probe runs: a named network namespace, a namespace file, a process's namespace, or a container's.
public enum NetnsTarget: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A name under `/run/netns`.
    case named(String)
    /// An absolute path to a namespace file, like `/proc/123/ns/net`.
    case path(String)
    /// The network namespace of process `pid` (a container, say).
    case pid(Int32)
    /// A container, found through its runtime when the run starts (`ContainerRef.found`); its main process's namespaces.
    case container(ContainerRef)
    /// Pods on this node, found through containerd when the run starts; each fault becomes one per pod hit, each
    /// with that pod's container as its target.
    case pod(PodRef)

    /// Parses the `netns:` form: a name, an absolute path or `pid:<N>`.
    public init(netns text: String) throws(ValueError) {
        if text.hasPrefix("pid:") {
            self = try .pid(Self.parsePID(String(text.dropFirst(4))))
        } else if text.hasPrefix("/") {
            guard !text.split(separator: "/").contains(".."), !text.contains("\0") else {
                throw ValueError("netns path '\(text)' must not contain '..'")
            }
            guard text.contains(where: { $0 != "/" }) else {
                throw ValueError("netns path '\(text)' names no namespace file (like /proc/123/ns/net or /run/netns/app)")
            }
            self = .path(text)
        } else {
            guard !text.isEmpty, text.count <= 255, text != ".", text != "..",
                  text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }) else {
                throw ValueError("invalid netns name '\(text)': use letters, digits, '.', '_' and '-', an absolute path, or pid:<N>")
            }
            self = .named(text)
        }
    }

    static func parsePID(_ text: String) throws(ValueError) -> Int32 {
        guard let pid = Int32(text), pid > 0 else {
            throw ValueError("invalid pid '\(text)': use a positive process id")
        }
        return pid
    }

    /// Parses the `pid:` form.
    public init(pid text: String) throws(ValueError) {
        self = .pid(try Self.parsePID(text))
    }

    /// The namespace file that `nsenter --net=` takes.
    public var namespacePath: String {
        switch self {
        case .named(let name): "/run/netns/\(name)"
        case .path(let path): path
        case .pid(let pid): "/proc/\(pid)/ns/net"
        // Not a path until found: a command given it fails (a run refuses a container it has not found first).
        case .container(let ref): ref.found.map { "/proc/\($0.pid)/ns/net" } ?? "container:\(ref.name)"
        case .pod(let ref): "pod:\(ref.namespace)/\(ref.name ?? "-")"
        }
    }

    /// The container, when the target is one.
    public var container: ContainerRef? {
        if case .container(let ref) = self { ref } else { nil }
    }

    /// `netns app`, `netns /proc/1/ns/net`, `pid 123`.
    public var description: String {
        switch self {
        case .named(let name): "netns \(name)"
        case .path(let path): "netns \(path)"
        case .pid(let pid): "pid \(pid)"
        case .container(let ref): ref.description
        case .pod(let ref): ref.description
        }
    }

    /// The pod, when the target is pods (not yet found).
    public var pod: PodRef? {
        if case .pod(let ref) = self { ref } else { nil }
    }

    private enum CodingKeys: String, CodingKey { case netns, pid, container, runtime, namespace, found, pod }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        if let pid = try container.decodeIfPresent(Int32.self, forKey: .pid) {
            self = .pid(pid)
        } else if let pod = try container.decodeIfPresent(PodRef.self, forKey: .pod) {
            self = .pod(pod)
        } else if let name = try container.decodeIfPresent(String.self, forKey: .container) {
            self = .container(ContainerRef(name: name, runtime: try container.decodeIfPresent(ContainerRuntime.self, forKey: .runtime),
                                           namespace: try container.decodeIfPresent(String.self, forKey: .namespace),
                                           found: try container.decodeIfPresent(FoundContainer.self, forKey: .found)))
        } else {
            let text = try container.decode(String.self, forKey: .netns)
            do { self = try NetnsTarget(netns: text) } catch {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
            }
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .named(let name): try container.encode(name, forKey: .netns)
        case .path(let path): try container.encode(path, forKey: .netns)
        case .pid(let pid): try container.encode(pid, forKey: .pid)
        case .container(let ref):
            try container.encode(ref.name, forKey: .container)
            try container.encodeIfPresent(ref.runtime, forKey: .runtime)
            try container.encodeIfPresent(ref.namespace, forKey: .namespace)
            try container.encodeIfPresent(ref.found, forKey: .found)
        case .pod(let ref): try container.encode(ref, forKey: .pod)
        }
    }
}
