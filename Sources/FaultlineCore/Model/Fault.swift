/// One fault of a scenario: what breaks, where, and during which window of the method.
public struct Fault: Sendable, Hashable {
    public var name: ResourceName
    /// Offset from the start of the method.
    public var start: TimeSpan = .zero
    /// How long it lasts; nil means until the end of maxDuration.
    public var duration: TimeSpan?
    /// Overrides `spec.target`.
    public var target: NetnsTarget?
    public var action: FaultAction

    public init(name: ResourceName, start: TimeSpan = .zero, duration: TimeSpan? = nil, target: NetnsTarget? = nil, action: FaultAction) {
        self.name = name
        self.start = start
        self.duration = duration
        self.target = target
        self.action = action
    }

    public var type: FaultType { action.type }

    /// Whether the scenario asks for the userspace nfqueue engine by name.
    public var usesNFQueueEngine: Bool {
        switch action {
        case .latency(let f): f.engine == .nfqueue
        case .packetLoss(let f): f.engine == .nfqueue
        default: false
        }
    }
}

/// The fault types of scenario format v1.
public enum FaultType: String, Sendable, Hashable, Codable, CaseIterable {
    case latency
    case packetLoss = "packet-loss"
    case corrupt, duplicate, reorder, bandwidth, drop
    case killProcess = "kill-process"
    case pauseProcess = "pause-process"
    case diskFill = "disk-fill"
    case cpuStress = "cpu-stress"
    case memoryStress = "memory-stress"

    /// Faults shaped with tc on an interface's egress (or its ingress, through an ifb device).
    public var isTrafficControl: Bool {
        switch self {
        case .latency, .packetLoss, .corrupt, .duplicate, .reorder, .bandwidth: true
        default: false
        }
    }

    /// Faults that act on the network (tc or iptables) and so on a network namespace.
    public var isNetwork: Bool { isTrafficControl || self == .drop }
}

/// A fault's type and its parameters.
public enum FaultAction: Sendable, Hashable {
    case latency(LatencyFault)
    case packetLoss(NetemRateFault)
    case corrupt(NetemRateFault)
    case duplicate(NetemRateFault)
    case reorder(ReorderFault)
    case bandwidth(BandwidthFault)
    case drop(DropFault)
    case killProcess(KillProcessFault)
    case pauseProcess(PauseProcessFault)
    case diskFill(DiskFillFault)
    case cpuStress(CPUStressFault)
    case memoryStress(MemoryStressFault)

    public var type: FaultType {
        switch self {
        case .latency: .latency
        case .packetLoss: .packetLoss
        case .corrupt: .corrupt
        case .duplicate: .duplicate
        case .reorder: .reorder
        case .bandwidth: .bandwidth
        case .drop: .drop
        case .killProcess: .killProcess
        case .pauseProcess: .pauseProcess
        case .diskFill: .diskFill
        case .cpuStress: .cpuStress
        case .memoryStress: .memoryStress
        }
    }

    /// Every traffic filter of a network fault (to, from, except), for resolving host names.
    public var filters: [TrafficFilter] {
        switch self {
        case .drop(let drop): [drop.to, drop.from, drop.except].compactMap { $0 }
        default: [shaping?.to, shaping?.from, shaping?.except].compactMap { $0 }
        }
    }

    /// The interface a tc fault shapes, the direction and its filters.
    public var shaping: Shaping? {
        switch self {
        case .latency(let f): Shaping(interface: f.interface, to: f.to, from: f.from, except: f.except, direction: f.direction)
        case .packetLoss(let f), .corrupt(let f), .duplicate(let f): Shaping(interface: f.interface, to: f.to, from: f.from, except: f.except, direction: f.direction)
        case .reorder(let f): Shaping(interface: f.interface, to: f.to, from: f.from, except: f.except, direction: f.direction)
        case .bandwidth(let f): Shaping(interface: f.interface, to: f.to, from: f.from, except: f.except, direction: f.direction)
        default: nil
        }
    }
}

/// What a tc fault (latency, packet-loss, corrupt, duplicate, reorder, bandwidth) shapes: an interface's egress or
/// ingress, the traffic of `to` (remote end) and `from` (local end), less `except`.
public struct Shaping: Sendable, Hashable {
    public var interface: InterfaceName
    public var to: TrafficFilter?
    public var from: TrafficFilter?
    public var except: TrafficFilter?
    /// egress or ingress (never both: a fault shapes one direction).
    public var direction: TrafficDirection

    public init(interface: InterfaceName, to: TrafficFilter?, from: TrafficFilter?, except: TrafficFilter?, direction: TrafficDirection?) {
        self.interface = interface
        self.to = to
        self.from = from
        self.except = except
        self.direction = direction ?? .egress
    }

    public var isIngress: Bool { direction == .ingress }
    /// Whether it shapes only some traffic (`to` or `from`), sending the rest to the clean class.
    public var isFiltered: Bool { to != nil || from != nil }
}

/// How latency and loss are injected: tc netem, a userspace NFQUEUE delayer, or whichever the kernel allows.
public enum NetemEngine: String, Sendable, Hashable, Codable, CaseIterable {
    case auto, netem, nfqueue
}

/// Delay distributions netem knows.
public enum DelayDistribution: String, Sendable, Hashable, Codable, CaseIterable {
    case uniform, normal, pareto, paretonormal
}

/// `latency`: delay on an interface's egress.
public struct LatencyFault: Sendable, Hashable, Codable {
    public var interface: InterfaceName
    public var delay: TimeSpan
    public var jitter: TimeSpan?
    public var correlation: Percent?
    public var distribution: DelayDistribution?
    /// The remote end: destination on egress, source on ingress.
    public var to: TrafficFilter?
    /// The local end: source on egress (a service's own port), destination on ingress.
    public var from: TrafficFilter?
    public var except: TrafficFilter?
    /// egress (nil) shapes what the interface sends; ingress what it receives, through an ifb device.
    public var direction: TrafficDirection?
    public var engine: NetemEngine = .auto

    public init(interface: InterfaceName, delay: TimeSpan, jitter: TimeSpan? = nil, correlation: Percent? = nil, distribution: DelayDistribution? = nil, to: TrafficFilter? = nil, from: TrafficFilter? = nil, except: TrafficFilter? = nil, direction: TrafficDirection? = nil, engine: NetemEngine = .auto) {
        self.interface = interface
        self.delay = delay
        self.jitter = jitter
        self.correlation = correlation
        self.distribution = distribution
        self.to = to
        self.from = from
        self.except = except
        self.direction = direction
        self.engine = engine
    }
}

/// `packet-loss`, `corrupt`, `duplicate`: a share of packets lost, corrupted or duplicated.
public struct NetemRateFault: Sendable, Hashable, Codable {
    public var interface: InterfaceName
    public var percent: Percent
    public var correlation: Percent?
    /// The remote end: destination on egress, source on ingress.
    public var to: TrafficFilter?
    /// The local end: source on egress (a service's own port), destination on ingress.
    public var from: TrafficFilter?
    public var except: TrafficFilter?
    /// egress (nil) shapes what the interface sends; ingress what it receives, through an ifb device.
    public var direction: TrafficDirection?
    /// Only `packet-loss` may choose an engine; `duplicate` follows engine auto (netem, else the nfqueue delayer); `corrupt` always uses netem.
    public var engine: NetemEngine?

    public init(interface: InterfaceName, percent: Percent, correlation: Percent? = nil, to: TrafficFilter? = nil, from: TrafficFilter? = nil, except: TrafficFilter? = nil, direction: TrafficDirection? = nil, engine: NetemEngine? = nil) {
        self.interface = interface
        self.percent = percent
        self.correlation = correlation
        self.to = to
        self.from = from
        self.except = except
        self.direction = direction
        self.engine = engine
    }
}

/// `reorder`: a share of packets sent at once while the rest wait `delay`.
public struct ReorderFault: Sendable, Hashable, Codable {
    public var interface: InterfaceName
    public var percent: Percent
    public var correlation: Percent?
    public var gap: Int?
    public var delay: TimeSpan
    /// The remote end: destination on egress, source on ingress.
    public var to: TrafficFilter?
    /// The local end: source on egress (a service's own port), destination on ingress.
    public var from: TrafficFilter?
    public var except: TrafficFilter?
    /// egress (nil) shapes what the interface sends; ingress what it receives, through an ifb device.
    public var direction: TrafficDirection?

    public init(interface: InterfaceName, percent: Percent, correlation: Percent? = nil, gap: Int? = nil, delay: TimeSpan, to: TrafficFilter? = nil, from: TrafficFilter? = nil, except: TrafficFilter? = nil, direction: TrafficDirection? = nil) {
        self.interface = interface
        self.percent = percent
        self.correlation = correlation
        self.gap = gap
        self.delay = delay
        self.to = to
        self.from = from
        self.except = except
        self.direction = direction
    }
}

/// `bandwidth`: a rate limit with a token bucket.
public struct BandwidthFault: Sendable, Hashable, Codable {
    public var interface: InterfaceName
    public var rate: BitRate
    public var burst: ByteCount?
    public var limit: ByteCount?
    /// The remote end: destination on egress, source on ingress.
    public var to: TrafficFilter?
    /// The local end: source on egress (a service's own port), destination on ingress.
    public var from: TrafficFilter?
    public var except: TrafficFilter?
    /// egress (nil) shapes what the interface sends; ingress what it receives, through an ifb device.
    public var direction: TrafficDirection?

    public init(interface: InterfaceName, rate: BitRate, burst: ByteCount? = nil, limit: ByteCount? = nil, to: TrafficFilter? = nil, from: TrafficFilter? = nil, except: TrafficFilter? = nil, direction: TrafficDirection? = nil) {
        self.interface = interface
        self.rate = rate
        self.burst = burst
        self.limit = limit
        self.to = to
        self.from = from
        self.except = except
        self.direction = direction
    }
}

/// Which packets a `drop` fault sees: those it sends, those it receives, or both.
public enum TrafficDirection: String, Sendable, Hashable, Codable, CaseIterable {
    case egress, ingress, both
}

/// `drop`: packets dropped (or rejected) by iptables rules.
public struct DropFault: Sendable, Hashable, Codable {
    public var direction: TrafficDirection = .both
    /// The remote end of the traffic: its hosts and ports.
    public var to: TrafficFilter?
    /// The local end of the traffic: local addresses and ports (a service's own port).
    public var from: TrafficFilter?
    public var except: TrafficFilter?
    public var probability: Percent = Percent(100)
    public var reject: Bool = false

    public init(direction: TrafficDirection = .both, to: TrafficFilter? = nil, from: TrafficFilter? = nil, except: TrafficFilter? = nil, probability: Percent = Percent(100), reject: Bool = false) {
        self.direction = direction
        self.to = to
        self.from = from
        self.except = except
        self.probability = probability
        self.reject = reject
    }
}

/// Which processes a process fault hits; every given selector must match.
public struct ProcessMatch: Sendable, Hashable, Codable {
    public var pid: Int32?
    public var pidFile: String?
    public var name: String?
    /// A regular expression matched against the command line (arguments joined by spaces).
    public var cmdline: String?
    public var user: String?
    /// The most processes the fault may hit; without it, `ProcessMatch.defaultMaxMatches`.
    public var maxMatches: Int?
    /// Set when the run starts, for a container target: only the container's processes match.
    public var container: ContainerScope?

    /// How many processes a match may hit unless the scenario says more (`maxMatches`): a broad match is a mistake
    /// more often than a plan.
    public static let defaultMaxMatches = 20

    public init(pid: Int32? = nil, pidFile: String? = nil, name: String? = nil, cmdline: String? = nil, user: String? = nil, maxMatches: Int? = nil) {
        self.pid = pid
        self.pidFile = pidFile
        self.name = name
        self.cmdline = cmdline
        self.user = user
        self.maxMatches = maxMatches
    }

    /// The bound in force.
    public var limit: Int { maxMatches ?? Self.defaultMaxMatches }

    public var isEmpty: Bool { pid == nil && pidFile == nil && name == nil && cmdline == nil && user == nil }
}

/// The container a process match is confined to: its PID namespace, and its root for `pidFile`.
public struct ContainerScope: Sendable, Hashable, Codable {
    /// `container checkout (podman 3f2a1b9c4d5e, pid 4242)`, for messages.
    public var container: String
    /// The identity (inode) of the container's PID namespace: only processes in it match.
    public var pidNamespace: UInt64
    /// Its root filesystem as this host reaches it (`/proc/PID/root`): `pidFile` is read under it.
    public var root: String

    public init(container: String, pidNamespace: UInt64, root: String) {
        self.container = container
        self.pidNamespace = pidNamespace
        self.root = root
    }
}

/// Which of the matching processes a kill hits.
public enum KillMode: String, Sendable, Hashable, Codable, CaseIterable {
    case one, all, random
}

/// `kill-process`: a signal sent to matching processes, once or `every` interval.
public struct KillProcessFault: Sendable, Hashable, Codable {
    public var match: ProcessMatch
    public var signal: Signal = .kill
    public var mode: KillMode = .all
    public var every: TimeSpan?

    public init(match: ProcessMatch, signal: Signal = .kill, mode: KillMode = .all, every: TimeSpan? = nil) {
        self.match = match
        self.signal = signal
        self.mode = mode
        self.every = every
    }
}

/// `pause-process`: SIGSTOP to matching processes, SIGCONT on revert.
public struct PauseProcessFault: Sendable, Hashable, Codable {
    public var match: ProcessMatch
    public init(match: ProcessMatch) { self.match = match }
}

/// How much to take: a share of the whole, or a size.
public enum FillAmount: Sendable, Hashable {
    case fillTo(Percent)
    case size(ByteCount)
}

/// `disk-fill`: one preallocated file on the filesystem of `path`.
public struct DiskFillFault: Sendable, Hashable {
    public var path: String
    public var amount: FillAmount
    /// Free space always left on the filesystem, whatever the amount asks.
    public var reserve: ByteCount?
    /// Set when the run starts, for a container target: the container's main process, through whose root `path`
    /// is reached; the fill is made only while that same process lives.
    public var owner: ProcessIdentity?

    public init(path: String, amount: FillAmount, reserve: ByteCount? = nil, owner: ProcessIdentity? = nil) {
        self.path = path
        self.amount = amount
        self.reserve = reserve
        self.owner = owner
    }

    /// Directories a disk fill never writes into: the root itself and the kernel's own filesystems.
    public static let forbidden = ["/proc", "/sys", "/dev"]

    /// Why `path` cannot be a disk-fill directory (nil when it may be): `/`, under /proc, /sys or /dev, or with `..`.
    public static func refusal(of path: String) -> String? {
        let parts = path.split(separator: "/")
        if parts.contains("..") || parts.contains(".") { return "must not contain '.' or '..': give the directory itself" }
        if parts.isEmpty { return "is the root directory: give a directory on the filesystem to fill, like /var/log" }
        let normal = "/" + parts.joined(separator: "/")
        // /dev/shm is a real tmpfs that is filled on purpose; the rest of /dev is not.
        if normal != "/dev/shm", !normal.hasPrefix("/dev/shm/"), let kernel = forbidden.first(where: { normal == $0 || normal.hasPrefix($0 + "/") }) {
            return "is under \(kernel), a kernel filesystem: give a directory on a real one"
        }
        return nil
    }
}

/// `cpu-stress`: busy workers with a duty cycle.
public struct CPUStressFault: Sendable, Hashable, Codable {
    /// Default: one per core.
    public var workers: Int?
    public var load: Percent = Percent(100)

    public init(workers: Int? = nil, load: Percent = Percent(100)) {
        self.workers = workers
        self.load = load
    }
}

/// `memory-stress`: allocated and touched memory.
public struct MemoryStressFault: Sendable, Hashable {
    public var amount: FillAmount
    public init(amount: FillAmount) { self.amount = amount }
}

/// A traffic filter: hosts, ports and protocol; unset parts match everything.
public struct TrafficFilter: Sendable, Hashable, Codable {
    public var hosts: [HostSpec]?
    public var ports: [PortRange]?
    public var `protocol`: TrafficProtocol?

    public init(hosts: [HostSpec]? = nil, ports: [PortRange]? = nil, protocol: TrafficProtocol? = nil) {
        self.hosts = hosts
        self.ports = ports
        self.protocol = `protocol`
    }
}

/// The transport protocols a filter names.
public enum TrafficProtocol: String, Sendable, Hashable, Codable, CaseIterable {
    case tcp, udp, icmp, all
}
