import FaultlineCore
import Synchronization

/// A kernel feature a fault may need, tried for real in a scratch network namespace.
public enum KernelFeature: String, Sendable, CaseIterable, Codable {
    case netem = "sch_netem"
    case htb = "sch_htb"
    case tbf = "sch_tbf"
    case u32 = "cls_u32"
    case iptablesComment = "iptables comment match"
    case iptablesStatistic = "iptables statistic match"
    case iptablesConntrack = "iptables conntrack and connmark"
    case iptablesReject = "iptables REJECT"
    case ip6tables = "ip6tables (statistic, REJECT)"
    case nfqueue = "NFQUEUE (iptables target, nfnetlink_queue)"

    /// The commands that show the feature works, run in order in the scratch namespace (on `lo`).
    var trial: [[String]] {
        let chain = "FLT-DOCTOR"
        return switch self {
        case .netem: [["tc", "qdisc", "replace", "dev", "lo", "root", "handle", "1:", "netem", "delay", "1ms"]]
        case .htb: [["tc", "qdisc", "replace", "dev", "lo", "root", "handle", "2:", "htb", "default", "1"]]
        case .tbf: [["tc", "qdisc", "replace", "dev", "lo", "root", "handle", "3:", "tbf", "rate", "1mbit", "burst", "32kb", "latency", "50ms"]]
        case .u32: [
            ["tc", "qdisc", "replace", "dev", "lo", "root", "handle", "4:", "htb", "default", "1"],
            ["tc", "filter", "add", "dev", "lo", "parent", "4:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "dst", "127.0.0.1/32", "flowid", "4:1"],
        ]
        case .iptablesComment: [
            ["iptables", "-w", "5", "-N", chain],
            ["iptables", "-w", "5", "-A", chain, "-m", "comment", "--comment", "faultline:doctor", "-j", "RETURN"],
        ]
        case .iptablesStatistic: [["iptables", "-w", "5", "-A", chain, "-m", "statistic", "--mode", "random", "--probability", "0.5", "-j", "RETURN"]]
        case .iptablesConntrack: [
            ["iptables", "-w", "5", "-A", chain, "-p", "tcp", "-m", "conntrack", "--ctstate", "NEW", "-j", "CONNMARK", "--set-xmark", "0x1000000/0xff000000"],
            ["iptables", "-w", "5", "-A", chain, "-p", "tcp", "-m", "connmark", "--mark", "0x1000000/0xff000000", "-j", "DROP"],
        ]
        case .iptablesReject: [["iptables", "-w", "5", "-A", chain, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"]]
        case .nfqueue: [
            ["iptables", "-w", "5", "-t", "mangle", "-N", chain],
            ["iptables", "-w", "5", "-t", "mangle", "-A", chain, "-j", "NFQUEUE", "--queue-num", "65535", "--queue-bypass"],
        ]
        case .ip6tables: [
            ["ip6tables", "-w", "5", "-N", chain],
            ["ip6tables", "-w", "5", "-A", chain, "-m", "statistic", "--mode", "random", "--probability", "0.5", "-j", "REJECT", "--reject-with", "icmp6-port-unreachable"],
        ]
        }
    }

    /// What to do when it is missing.
    var fix: String {
        switch self {
        case .netem: "kernel has no sch_netem: load it (modprobe sch_netem) or use a kernel with CONFIG_NET_SCH_NETEM (latency, packet-loss, duplicate, corrupt and reorder can use the nfqueue engine instead)"
        case .htb: "kernel has no sch_htb: load it (modprobe sch_htb) or enable CONFIG_NET_SCH_HTB"
        case .tbf: "kernel has no sch_tbf: load it (modprobe sch_tbf) or enable CONFIG_NET_SCH_TBF"
        case .u32: "kernel has no cls_u32: load it (modprobe cls_u32) or enable CONFIG_NET_CLS_U32"
        case .iptablesComment: "iptables cannot use the comment match: enable CONFIG_NETFILTER_XT_MATCH_COMMENT (xt_comment)"
        case .iptablesStatistic: "iptables cannot use the statistic match: enable CONFIG_NETFILTER_XT_MATCH_STATISTIC (xt_statistic)"
        case .iptablesConntrack: "iptables cannot use conntrack/connmark: enable xt_conntrack, xt_connmark and nf_conntrack"
        case .iptablesReject: "iptables cannot REJECT: enable CONFIG_IP_NF_TARGET_REJECT"
        case .nfqueue: "the kernel cannot queue packets to userspace: load nfnetlink_queue and xt_NFQUEUE (modprobe nfnetlink_queue xt_NFQUEUE) or enable CONFIG_NETFILTER_NETLINK_QUEUE and CONFIG_NETFILTER_XT_TARGET_NFQUEUE"
        case .ip6tables: "ip6tables does not work here: install iptables (with ip6tables) and enable IPv6 netfilter"
        }
    }
}

/// Tries kernel features in a throwaway network namespace; nothing outside it is touched.
public struct KernelFeatureProbe: Sendable {
    let runner: any CommandRunner

    public init(runner: any CommandRunner = SubprocessRunner()) { self.runner = runner }

    /// Each feature's result: nil when present, else what failed. Throws when no scratch namespace can be made.
    public func probe(_ features: [KernelFeature]) async throws(FaultlineError) -> [KernelFeature: String?] {
        let name = "flt-doctor-\(UInt32.random(in: 0 ... .max))"
        let create = try await runner.run(["ip", "netns", "add", name])
        guard create.succeeded else {
            throw FaultlineError(.preflight, "cannot create a scratch network namespace to try kernel features (needs root, or CAP_SYS_ADMIN)",
                                 cause: create.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var results: [KernelFeature: String?] = [:]
        // iptables trials build on one chain: order them so its creation comes first.
        let ordered = KernelFeature.allCases.filter { features.contains($0) || ($0 == .iptablesComment && features.contains { $0.rawValue.hasPrefix("iptables") }) }
        for feature in ordered {
            var failure: String?
            for argv in feature.trial {
                let result = try? await runner.run(["ip", "netns", "exec", name] + argv)
                guard let result, result.succeeded else {
                    failure = result.map { "'\(ShellQuote.join(argv))': \($0.standardError.trimmingCharacters(in: .whitespacesAndNewlines))" } ?? "'\(argv[0])' could not run"
                    break
                }
            }
            // The delayer's side: bind a queue in the scratch namespace, as the delayer will.
            if feature == .nfqueue, failure == nil, let problem = NFQueueSocket.probe(namespacePath: "/run/netns/\(name)") {
                failure = "binding a queue: \(problem)"
            }
            if features.contains(feature) { results[feature] = .some(failure) }
        }
        _ = try? await runner.run(["ip", "netns", "del", name])
        return results
    }
}

/// The kernel features a long-lived process (the agent) has seen work, so that each run's preflight does not make a
/// scratch namespace and run a dozen iptables and tc commands again (about 30 ms of a submit). Only what worked is
/// remembered, and only for `lifetime`: a missing feature is tried again at every check (a module loaded since is
/// found at once), and one unloaded since is found again within `lifetime`, or when the fault applies (its inject
/// fails, and what was applied is reverted). `doctor` and a one-shot `faultline run` are new processes: they try all.
public final class KernelFeatureCache: Sendable {
    /// The process's cache, which a `Preflight` uses unless given another (or none).
    public static let shared = KernelFeatureCache()

    public let lifetime: Duration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let workedAt = Mutex<[KernelFeature: ContinuousClock.Instant]>([:])

    public init(lifetime: Duration = .seconds(600), now: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.lifetime = lifetime
        self.now = now
    }

    /// Those of `features` that worked less than `lifetime` ago.
    public func present(_ features: [KernelFeature]) -> Set<KernelFeature> {
        let now = now()
        return workedAt.withLock { worked in Set(features.filter { worked[$0].map { now - $0 < lifetime } ?? false }) }
    }

    /// Remembers what a probe found: features that worked now; a feature that failed is forgotten.
    public func record(_ results: [KernelFeature: String?]) {
        let now = now()
        workedAt.withLock { worked in
            for (feature, failure) in results { worked[feature] = failure == nil ? now : nil }
        }
    }
}
