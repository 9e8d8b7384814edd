import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One thing a fault needs, and whether this host has it.
public struct PreflightCheck: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Codable { case capability, tool, kernel, target, path }
    public enum Status: String, Sendable, Codable { case ok, missing, unknown, warning }

    /// The fault's name, or nil for a fault type in general.
    public var fault: String?
    public var type: FaultType
    public var kind: Kind
    public var name: String
    public var status: Status
    public var detail: String?
    /// What to do when it is missing.
    public var fix: String?

    /// One line for a missing need: what needs it, what it is, and the fix.
    public var problem: String {
        "\(fault ?? type.rawValue) needs \(kind.rawValue) \(name): \(fix ?? detail ?? "missing")"
    }
}

/// What `doctor` and the run's preflight found.
public struct PreflightReport: Sendable, Codable {
    public var effectiveCapabilities: [String]
    public var checks: [PreflightCheck]

    /// True when nothing a fault needs is missing.
    public var passed: Bool { !checks.contains { $0.status == .missing } }

    public init(effectiveCapabilities: [String], checks: [PreflightCheck]) {
        self.effectiveCapabilities = effectiveCapabilities
        self.checks = checks
    }
}

/// Works out what each fault (or fault type) needs — capabilities, tools, kernel features — and checks it here.
public struct Preflight: Sendable {
    let runner: any CommandRunner
    let capabilities: ProcessCapabilities?
    let searchPath: [String]
    /// Kernel features seen working lately (nil: try every one each time).
    let featureCache: KernelFeatureCache?

    public init(runner: any CommandRunner = SubprocessRunner(), capabilities: ProcessCapabilities? = try? .current(),
                searchPath: [String] = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"],
                featureCache: KernelFeatureCache? = .shared) {
        self.runner = runner
        self.capabilities = capabilities
        self.searchPath = searchPath
        self.featureCache = featureCache
    }

    /// A need of one fault, before it is checked.
    struct Need: Hashable {
        var kind: PreflightCheck.Kind
        var name: String
        var optional = false
        var why: String?
    }

    /// Checks every fault of `scenario`.
    public func check(_ scenario: Scenario) async -> PreflightReport {
        let items = scenario.spec.faults.map { fault in
            (fault.name.rawValue as String?, fault.type, needs(fault, target: fault.target ?? scenario.spec.target))
        }
        return await check(items)
    }

    /// Checks what each fault of `scenario` needs as `plan` carries it out: where the planner chose the engine of a
    /// latency, packet-loss, duplicate, corrupt or reorder fault (engine auto), exactly that engine's needs are checked, not either one's.
    public func check(_ scenario: Scenario, plan: Plan) async -> PreflightReport {
        let planned = Dictionary(plan.faults.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let items = scenario.spec.faults.map { fault in
            var needs = needs(fault, target: fault.target ?? scenario.spec.target)
            if needs.contains(where: { $0.name == Self.eitherEngine }), let planned = planned[fault.name.rawValue] {
                let delayer = planned.inject.contains { if case .start(_, .delayer) = $0 { true } else { false } }
                needs = Self.explicit(delayer ? .nfqueue : .netem, replacing: needs)
            }
            // A disk fill in a container: the directory the plan fills, as this host reaches it.
            if case .diskFill = fault.action, let planned = planned[fault.name.rawValue] {
                for case .call(.fill(let file, _)) in planned.inject {
                    let directory = String(file[..<(file.lastIndex(of: "/") ?? file.endIndex)])
                    needs = needs.map { $0.kind == .path ? Need(kind: .path, name: directory) : $0 }
                }
            }
            return (fault.name.rawValue as String?, fault.type, needs)
        }
        return await check(items)
    }

    /// Checks what each fault type needs in general (no scenario).
    public func checkAllTypes() async -> PreflightReport {
        await check(FaultType.allCases.map { type in (nil, type, needs(type)) })
    }

    func needs(_ type: FaultType) -> [Need] {
        var result: [Need] = []
        if type.isNetwork { result.append(Need(kind: .capability, name: Capability.netAdmin.description)) }
        if [.latency, .packetLoss, .duplicate, .corrupt, .reorder].contains(type) {
            // tc and its kernel parts, or iptables and NFQUEUE: one check says which engine can run
            result.append(Need(kind: .kernel, name: Self.eitherEngine))
            result.append(Need(kind: .capability, name: Capability.netRaw.description, optional: true, why: Self.netRawWhy))
        } else if type.isTrafficControl {
            result.append(Need(kind: .tool, name: "tc"))
            result += [KernelFeature.htb, .u32].map { Need(kind: .kernel, name: $0.rawValue) }
            result.append(Need(kind: .kernel, name: (type == .bandwidth ? KernelFeature.tbf : .netem).rawValue))
        }
        if type == .drop {
            result += [Need(kind: .tool, name: "iptables"), Need(kind: .tool, name: "ip6tables")]
            result += [KernelFeature.iptablesComment, .iptablesStatistic, .iptablesConntrack, .iptablesReject, .ip6tables]
                .map { Need(kind: .kernel, name: $0.rawValue) }
        }
        if type == .killProcess || type == .pauseProcess {
            result.append(Need(kind: .capability, name: Capability.kill.description, optional: true, why: "for processes of other users"))
        }
        return result
    }

    func needs(_ fault: Fault, target: NetnsTarget?) -> [Need] {
        var result = needs(fault.type)
        switch fault.action {
        case .drop(let drop):
            let probabilistic = drop.probability.value < 100
            result.removeAll { need in
                (need.name == KernelFeature.iptablesStatistic.rawValue && !probabilistic)
                    || (need.name == KernelFeature.iptablesConntrack.rawValue && !probabilistic)
                    || (need.name == KernelFeature.iptablesReject.rawValue && !drop.reject)
            }
        case .latency(let latency) where latency.engine != .auto:
            result = Self.explicit(latency.engine, replacing: result)
        case .packetLoss(let loss) where (loss.engine ?? .auto) != .auto:
            result = Self.explicit(loss.engine ?? .auto, replacing: result)
        case .diskFill(let fill) where target?.container == nil && target?.pod == nil:
            result.append(Need(kind: .path, name: fill.path))
        default:
            break
        }
        if fault.type.isNetwork, let target {
            result.append(Need(kind: .tool, name: "nsenter"))
            result.append(Need(kind: .capability, name: Capability.sysAdmin.description, why: "to enter \(target)"))
            result.append(Need(kind: .target, name: target.namespacePath))
        }
        return result
    }

    /// The need of latency, packet-loss, duplicate, corrupt and reorder with engine auto: netem (tc, sch_htb, cls_u32, sch_netem) or
    /// else the nfqueue delayer (iptables, ip6tables, NFQUEUE); the check says which one runs, and why.
    static let eitherEngine = "netem or nfqueue engine"
    static let netemPath: [KernelFeature] = [.htb, .u32, .netem]
    static let netRawWhy = "for the nfqueue engine to send copies (duplicates, and packets made here); without it those are held, which slows their senders, and nothing is duplicated"

    /// Needs for an engine the scenario names: netem's, or the nfqueue delayer's.
    static func explicit(_ engine: NetemEngine, replacing needs: [Need]) -> [Need] {
        var result = needs.filter { $0.name != eitherEngine }
        if engine == .netem {
            result.removeAll { $0.name == Capability.netRaw.description }
            result.append(Need(kind: .tool, name: "tc"))
            result += netemPath.map { Need(kind: .kernel, name: $0.rawValue) }
        } else {
            result += [Need(kind: .tool, name: "iptables"), Need(kind: .tool, name: "ip6tables"), Need(kind: .kernel, name: KernelFeature.nfqueue.rawValue)]
        }
        return result
    }

    func check(_ items: [(String?, FaultType, [Need])]) async -> PreflightReport {
        var features = Set(items.flatMap { $0.2 }.filter { $0.kind == .kernel }.compactMap { KernelFeature(rawValue: $0.name) })
        if items.contains(where: { $0.2.contains { $0.name == Self.eitherEngine } }) {
            features.formUnion(Self.netemPath + [.nfqueue])
        }
        var featureResults: [KernelFeature: String?] = [:]
        var probeFailure: String?
        if !features.isEmpty, let capabilities, !capabilities.hasEffective(.netAdmin) || !capabilities.hasEffective(.sysAdmin) {
            probeFailure = "not tried: trying kernel features in a scratch namespace needs CAP_NET_ADMIN and CAP_SYS_ADMIN"
        } else if !features.isEmpty {
            let known = featureCache?.present(Array(features)) ?? []
            for feature in known { featureResults[feature] = .some(nil) }
            let unknown = KernelFeature.allCases.filter { features.contains($0) && !known.contains($0) }
            if !unknown.isEmpty {
                do {
                    let found = try await KernelFeatureProbe(runner: runner).probe(unknown)
                    featureResults.merge(found) { _, new in new }
                    featureCache?.record(found)
                } catch {
                    probeFailure = error.description
                }
            }
        }
        var checks: [PreflightCheck] = []
        for (fault, type, needs) in items {
            for need in needs {
                var check = PreflightCheck(fault: fault, type: type, kind: need.kind, name: need.name, status: .ok, detail: need.why, fix: nil)
                switch need.kind {
                case .capability:
                    if let capabilities {
                        let has = Capability.allCases.first { $0.description == need.name }.map(capabilities.hasEffective) ?? false
                        if !has {
                            check.status = need.optional ? .warning : .missing
                            check.fix = "run as root or with --cap-add \(need.name) (capability CAP_\(need.name))"
                        }
                    } else {
                        check.status = .unknown
                        check.detail = "this process's capabilities could not be read"
                    }
                case .tool:
                    if !searchPath.contains(where: { FileManager.default.isExecutableFile(atPath: "\($0)/\(need.name)") }) {
                        check.status = .missing
                        check.fix = "install \(Self.package(of: need.name)) (it provides \(need.name))"
                    }
                case .kernel:
                    if need.name == Self.eitherEngine {
                        check = engineCheck(check, featureResults: featureResults, probeFailure: probeFailure)
                    } else if let feature = KernelFeature(rawValue: need.name) {
                        if let probeFailure {
                            check.status = .unknown
                            check.detail = probeFailure
                        } else if case .some(.some(let failure)) = featureResults[feature] {
                            check.status = .missing
                            check.detail = failure
                            check.fix = feature.fix
                        }
                    }
                case .target:
                    if !FileManager.default.fileExists(atPath: need.name) {
                        check.status = .missing
                        check.fix = "\(need.name) does not exist: create the namespace (ip netns add) or fix the target"
                    }
                case .path:
                    var info = stat()
                    let resolved = realpath(need.name, nil).map { pointer in defer { free(pointer) }; return String(cString: pointer) }
                    // A container's directory (/proc/PID/root/...) was resolved inside its root already; realpath
                    // would read the root link as this host's /.
                    if let resolved, !need.name.hasPrefix("/proc/"), let why = DiskFillFault.refusal(of: resolved), resolved != need.name {
                        check.status = .missing
                        check.detail = "resolves to \(resolved), which \(why.hasPrefix("is") ? why : "is refused: \(why)")"
                        check.fix = "'\(need.name)' must lead to a directory on a real filesystem, not through a link to \(resolved)"
                    } else if stat(need.name, &info) != 0 || info.st_mode & S_IFMT != S_IFDIR {
                        check.status = .missing
                        check.detail = stat(need.name, &info) != 0 ? String(cString: strerror(errno)) : "not a directory"
                        check.fix = "'\(need.name)' must be an existing directory"
                    } else if access(need.name, W_OK) != 0 {
                        check.status = .missing
                        check.detail = String(cString: strerror(errno))
                        check.fix = "'\(need.name)' must be an existing directory this process can write to"
                    }
                }
                checks.append(check)
            }
        }
        let effective = capabilities.map { caps in Capability.allCases.filter(caps.hasEffective).map(\.description) } ?? []
        return PreflightReport(effectiveCapabilities: effective, checks: checks)
    }

    /// Which engine latency, packet-loss, duplicate, corrupt and reorder use here (engine auto), and why; missing when neither can run.
    func engineCheck(_ base: PreflightCheck, featureResults: [KernelFeature: String?], probeFailure: String?) -> PreflightCheck {
        var check = base
        if let probeFailure {
            check.status = .unknown
            check.detail = probeFailure
            return check
        }
        func failure(_ feature: KernelFeature) -> String? {
            if case .some(.some(let failure)) = featureResults[feature] { return failure }
            return nil
        }
        func hasTool(_ tool: String) -> Bool { searchPath.contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") } }
        let netemMissing = (hasTool("tc") ? [] : ["no tc (install iproute2)"]) + Self.netemPath.compactMap { feature in failure(feature).map { _ in feature.rawValue } }
        let queueMissing = ["iptables", "ip6tables"].filter { !hasTool($0) }.map { "no \($0) (install iptables)" }
            + (failure(.nfqueue).map { ["NFQUEUE (\($0))"] } ?? [])
        let netemReason = failure(.netem).map { "the kernel has no sch_netem (\($0))" } ?? "netem cannot run: missing \(netemMissing.joined(separator: ", "))"
        if netemMissing.isEmpty {
            check.detail = "netem: the kernel has sch_netem, so engine auto uses tc netem"
        } else if queueMissing.isEmpty {
            check.detail = "nfqueue: \(netemReason), so engine auto uses the userspace nfqueue delayer"
        } else {
            check.status = .missing
            check.detail = "\(netemReason); nfqueue cannot run either: missing \(queueMissing.joined(separator: ", "))"
            check.fix = "\(KernelFeature.netem.fix); or \(KernelFeature.nfqueue.fix)"
        }
        return check
    }

    static func package(of tool: String) -> String {
        switch tool {
        case "tc", "ip": "iproute2"
        case "iptables", "ip6tables": "iptables"
        case "nsenter": "util-linux"
        default: tool
        }
    }
}
