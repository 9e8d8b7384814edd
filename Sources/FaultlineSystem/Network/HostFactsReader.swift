import CFaultlineShims
import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Reads the facts a plan needs, without changing anything on the host; what it cannot read, it says.
public struct HostFactsReader: Sendable {
    let runner: any CommandRunner

    public init(runner: any CommandRunner = SubprocessRunner()) { self.runner = runner }

    /// Where a run pins its target namespaces: pins `<directory>/<runID>-<n>`.
    public struct PinSettings: Sendable {
        public var directory: String
        public var runID: String
        public init(directory: String, runID: String) {
            self.directory = directory
            self.runID = runID
        }
    }

    /// Facts for planning `scenario`; with `pins`, each target namespace gets the pin the run will hold it by.
    public func read(for scenario: Scenario, agentPort: UInt16? = nil, pins: PinSettings? = nil) async -> HostFacts {
        var facts = HostFacts()
        facts.agentPort = agentPort
        if case .success(let own) = NamespacePin.identity(of: "/proc/self/ns/net") { facts.ownNamespace = own }
        facts.cpuCount = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        facts.sshPorts = sshPorts()
        facts.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "faultline"
        let table = ProcessTable()
        let processFaults: [(String, ProcessMatch)] = scenario.spec.faults.compactMap { fault in
            switch fault.action {
            case .killProcess(let kill): (fault.name.rawValue, kill.match)
            case .pauseProcess(let pause): (fault.name.rawValue, pause.match)
            default: nil
            }
        }
        if !processFaults.isEmpty {
            let processes = table.all()
            let protected = table.protectedPIDs().union(table.faultlinePIDs())
            for (name, match) in processFaults {
                let fromFile = match.pidFromFile()
                facts.processMatches[name] = match.select(from: processes, pidFromFile: fromFile, protected: protected).map(\.identity)
            }
        }
        for fault in scenario.spec.faults {
            guard case .diskFill(let fill) = fault.action, let found = (fault.target ?? scenario.spec.target)?.container?.found,
                  let inside = try? Filesystem.resolve(fill.path, inRoot: found.root), DiskFillFault.refusal(of: inside) == nil else { continue }
            facts.containerPaths[fault.name.rawValue] = found.root + inside
            var there = stat(), root = stat()
            if stat(found.root + inside, &there) == 0, stat("/", &root) == 0, there.st_dev == root.st_dev {
                facts.containerPathsOnHostDisk[fault.name.rawValue] = "this host's root filesystem"
            } else if faultline_filesystem_type(found.root + inside) == 0x794C_7630 {
                // overlayfs: the container's writable layer, whose room is the runtime's storage on this host.
                facts.containerPathsOnHostDisk[fault.name.rawValue] = "the container's writable layer (an overlay on the runtime's storage)"
            }
        }
        let network = scenario.spec.faults.filter { $0.type.isNetwork }
        if scenario.spec.faults.contains(where: { [.latency, .packetLoss, .corrupt, .duplicate, .reorder].contains($0.type) }) {
            let kernel = await KernelInventory.read(runner: runner)
            let (available, note) = netemAvailable(kernel)
            facts.netemAvailable = available
            if let note { facts.unreadable.append(note) }
            if available != true || scenario.spec.faults.contains(where: \.usesNFQueueEngine) {
                facts.nfqueueAvailable = nfqueueAvailable(kernel)
            }
        }
        var targets: [NetnsTarget?] = []
        for fault in network where !targets.contains(fault.target ?? scenario.spec.target) {
            targets.append(fault.target ?? scenario.spec.target)
        }
        for target in targets {
            var namespace = await namespace(target)
            if let pins, let target, let identity = namespace.identity {
                namespace.pin = PinnedNamespace(path: "\(pins.directory)/\(pins.runID)-\(facts.namespaces.count + 1)",
                                                source: target.namespacePath, identity: identity, bootID: NamespacePin.bootID)
            }
            facts.namespaces.append(namespace)
        }
        for fault in network {
            for host in hostNames(fault.action) where facts.resolvedHosts[host] == nil {
                facts.resolvedHosts[host] = Self.resolve(host)
            }
        }
        return facts
    }

    func hostNames(_ action: FaultAction) -> [String] {
        action.filters.flatMap { $0.hosts ?? [] }.compactMap {
            if case .name(let name) = $0 { return name } else { return nil }
        }
    }

    /// Interfaces and root qdiscs of a namespace, read with `ip -j` and `tc -j`.
    func namespace(_ target: NetnsTarget?) async -> NamespaceFacts {
        var facts = NamespaceFacts(target: target)
        var prefix: [String] = []
        if let target {
            let path = target.namespacePath
            var info = stat()
            if stat(path, &info) != 0 {
                // Without root, /proc/PID/ns/net of another user's process exists but cannot be read: that is
                // something the plan does not know, not a target that is missing (which would stop the run).
                let code = errno
                if code == EACCES || code == EPERM {
                    facts.unreadable = "cannot read \(path): \(String(cString: strerror(code))); plan as root to read it"
                } else {
                    facts.exists = false
                    facts.unreadable = "\(path) not found"
                }
                return facts
            }
            switch NamespacePin.identity(of: path) {
            case .success(let identity): facts.identity = identity
            case .failure(let error):
                // Not a network namespace stops the run; a namespace that cannot be opened here (no root) is a note.
                facts.exists = error.code != .preflight
                facts.unreadable = error.message
                return facts
            }
            prefix = ["nsenter", "--net=\(path)", "--"]
        }
        do {
            let links = try await runner.run(prefix + ["ip", "-j", "addr", "show"])
            let qdiscs = try await runner.run(prefix + ["tc", "-j", "-d", "qdisc", "show"])
            guard links.succeeded, qdiscs.succeeded else {
                let failed = links.succeeded ? qdiscs : links
                facts.unreadable = "'\(ShellQuote.join(failed.argv))' failed: \(failed.standardError.trimmingCharacters(in: .whitespacesAndNewlines))"
                return facts
            }
            facts.interfaces = try Self.interfaces(fromIPLinkJSON: links.standardOutput)
            facts.addresses = Self.addresses(fromIPAddrJSON: links.standardOutput)
            facts.rootQdiscs = try Self.rootQdiscs(fromTCJSON: qdiscs.standardOutput)
            facts.ingressQdiscs = try Self.ingressQdiscs(fromTCJSON: qdiscs.standardOutput)
            // What listens there, for the plan's warnings about filters that cannot match (a missing ss is no error).
            if let sockets = try? await runner.run(prefix + ["ss", "-H", "-l", "-t", "-u", "-n"]), sockets.succeeded {
                facts.listeningPorts = Self.listeningPorts(fromSS: sockets.standardOutput)
            }
        } catch {
            facts.unreadable = "\(error)"
        }
        return facts
    }

    /// The local addresses in `ip -j addr show`.
    static func addresses(fromIPAddrJSON text: String) -> [String]? {
        struct Link: Decodable {
            struct Address: Decodable { var local: String? }
            var addr_info: [Address]?
        }
        guard let links = try? JSONDecoder().decode([Link].self, from: Data(text.utf8)) else { return nil }
        return links.flatMap { ($0.addr_info ?? []).compactMap(\.local) }
    }

    /// The local ports of `ss -H -l -t -u -n` (`tcp LISTEN 0 4096 0.0.0.0:8080 0.0.0.0:*`, `[::]:53`, `*:8080`).
    public static func listeningPorts(fromSS text: String) -> [UInt16] {
        let ports = text.split(separator: "\n").compactMap { line -> UInt16? in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 5, let colon = fields[4].lastIndex(of: ":") else { return nil }
            return UInt16(fields[4][fields[4].index(after: colon)...])
        }
        return Array(Set(ports)).sorted()
    }

    static func interfaces(fromIPLinkJSON text: String) throws -> [String] {
        struct Link: Decodable { var ifname: String }
        return try JSONDecoder().decode([Link].self, from: Data(text.utf8)).map(\.ifname)
    }

    /// The ingress or clsact qdisc of each device that has one, from `tc -j qdisc show` (its parent is ffff:fff1).
    /// `device` names the device of a `tc qdisc show dev DEVICE`, whose entries leave it out.
    public static func ingressQdiscs(fromTCJSON text: String, device: String? = nil) throws -> [String: String] {
        struct Entry: Decodable { var kind: String; var dev: String?; var parent: String? }
        var result: [String: String] = [:]
        for entry in try JSONDecoder().decode([Entry].self, from: Data(text.utf8)) where entry.kind == "ingress" || entry.kind == "clsact" {
            if let name = entry.dev ?? device { result[name] = entry.kind }
        }
        return result
    }

    /// Root qdiscs per device from `tc -j qdisc show`; pfifo and bfifo carry what restores them.
    static func rootQdiscs(fromTCJSON text: String, device: String? = nil) throws -> [String: RootQdisc] {
        struct Entry: Decodable {
            var kind: String
            var handle: String
            var dev: String?
            var root: Bool?
            var options: [String: JSONValue]?
        }
        var result: [String: RootQdisc] = [:]
        for entry in try JSONDecoder().decode([Entry].self, from: Data(text.utf8)) where entry.root == true {
            var restore: [String]?
            let options = entry.options ?? [:]
            switch (entry.kind, options["limit"], options["rate"], options["burst"], options["lat"]) {
            case ("pfifo", .number(let limit)?, _, _, _), ("bfifo", .number(let limit)?, _, _, _):
                restore = [entry.kind, "limit", "\(UInt64(limit))"]
            case ("tbf", _, .number(let rate)?, let burst?, .number(let latency)?):
                // From `tc -j -d`: rate in bytes/s, burst as tc prints it ("64Kb/1", which reads back
                // exactly, where a byte count would lose a few bytes to tick rounding), latency in µs.
                let known: Set<String> = ["rate", "burst", "lat", "mpu", "linklayer"]
                guard Set(options.keys).isSubset(of: known), options["linklayer"].map({ $0 == .string("ethernet") }) ?? true else { break }
                let burstText: String? = switch burst {
                case .string(let text): text
                case .number(let bytes): "\(UInt64(bytes))"
                default: nil
                }
                guard let burstText else { break }
                restore = ["tbf", "rate", "\(UInt64(rate) * 8)bit", "burst", burstText]
                if case .number(let mpu)? = options["mpu"], mpu > 0 { restore! += ["mpu", "\(UInt64(mpu))"] }
                restore! += ["latency", "\(UInt64(latency))us"]
            default:
                break
            }
            guard let dev = entry.dev ?? device else { continue }
            result[dev] = RootQdisc(kind: entry.kind, handle: entry.handle, restoreArguments: restore)
        }
        return result
    }

    /// Whether the kernel has sch_netem, from /proc/modules, the module tree or the kernel config.
    func netemAvailable(_ kernel: KernelInventory) -> (Bool?, String?) {
        if let available = kernel.has(module: "sch_netem", config: "CONFIG_NET_SCH_NETEM") { return (available, nil) }
        return (nil, "whether the kernel has sch_netem could not be read (no /proc/modules, module tree or /proc/config.gz); 'faultline doctor' tries it")
    }

    /// Whether the kernel can queue packets to userspace: nfnetlink_queue and the NFQUEUE target.
    func nfqueueAvailable(_ kernel: KernelInventory) -> Bool? {
        let queue = FileManager.default.fileExists(atPath: "/proc/net/netfilter/nfnetlink_queue") ? true
            : kernel.has(module: "nfnetlink_queue", config: "CONFIG_NETFILTER_NETLINK_QUEUE")
        let target = kernel.has(module: "xt_NFQUEUE", config: "CONFIG_NETFILTER_XT_TARGET_NFQUEUE")
        if queue == false || target == false { return false }
        if queue == true, target == true { return true }
        return nil
    }

    /// Ports sshd listens on, from /etc/ssh/sshd_config (22 when unset).
    func sshPorts() -> [UInt16] {
        guard let config = try? String(contentsOfFile: "/etc/ssh/sshd_config", encoding: .utf8) else { return [22] }
        let ports = config.split(separator: "\n").compactMap { line -> UInt16? in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 2, words[0].lowercased() == "port" else { return nil }
            return UInt16(words[1])
        }
        return ports.isEmpty ? [22] : ports
    }

    /// Resolves a host name with getaddrinfo.
    static func resolve(_ name: String) -> HostResolution {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &list)
        guard status == 0 else { return .failed(String(cString: gai_strerror(status))) }
        defer { freeaddrinfo(list) }
        var addresses: [IPNetwork] = []
        var cursor = list
        while let entry = cursor?.pointee {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(entry.ai_addr, entry.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0,
               let network = IPNetwork(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)),
               !addresses.contains(network) {
                addresses.append(network)
            }
            cursor = entry.ai_next
        }
        return .addresses(addresses.sorted())
    }
}

/// Just enough JSON to read tc's option values.
enum JSONValue: Decodable, Equatable {
    case number(Double), string(String), bool(Bool), other

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let value = try? c.decode(Double.self) { self = .number(value) }
        else if let value = try? c.decode(String.self) { self = .string(value) }
        else if let value = try? c.decode(Bool.self) { self = .bool(value) }
        else { self = .other }
    }
}

/// What the kernel has, read once: loaded modules, the module tree of this release, and the kernel config.
struct KernelInventory {
    var loaded: String?
    var builtin: String?
    var installed: String?
    var config: Set<Substring>?

    static func read(runner: any CommandRunner) async -> KernelInventory {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        var kernel = KernelInventory(loaded: FileBytes.text("/proc/modules"),
                                     builtin: try? String(contentsOfFile: "/lib/modules/\(release)/modules.builtin", encoding: .utf8),
                                     installed: try? String(contentsOfFile: "/lib/modules/\(release)/modules.dep", encoding: .utf8))
        if kernel.installed == nil, FileManager.default.fileExists(atPath: "/proc/config.gz"),
           let config = try? await runner.run(["gzip", "-dc", "/proc/config.gz"], timeout: .seconds(10), outputLimit: 4 << 20), config.succeeded {
            kernel.config = Set(config.standardOutput.split(separator: "\n"))
        }
        return kernel
    }

    /// Whether the kernel has `module` (loaded, built in, or installed), or config option `config`; nil when none can be read.
    func has(module: String, config option: String) -> Bool? {
        if loaded?.contains("\(module) ") == true || builtin?.contains("\(module).ko") == true { return true }
        if let installed { return installed.contains("\(module).ko") }
        if let config { return config.contains("\(option)=y") || config.contains("\(option)=m") }
        return nil
    }
}
