/// Turns a scenario and the host's facts into a plan: pure and deterministic, it runs and reads nothing.
public struct Planner: Sendable {
    /// tc handles owned by Faultline: the htb root, and the leaf qdisc of the fault class.
    public static let rootHandle = "fa17:"
    public static let leafHandle = "fa18:"
    public static let cleanClass = "fa17:1"
    public static let faultClass = "fa17:2"
    /// The ingress qdisc an ingress tc fault adds to its interface (the kernel's fixed handle for it).
    public static let ingressHandle = "ffff:"
    /// Connection-mark bits Faultline uses for per-connection TCP drops.
    public static let connmarkMask: UInt32 = 0xff00_0000
    /// Seconds iptables waits for the xtables lock.
    static let iptablesWait = "5"

    public let facts: HostFacts

    public init(facts: HostFacts) { self.facts = facts }

    /// The plan of `scenario` for run `runID` (8 lowercase hex digits, or any short [a-z0-9] id).
    public func plan(_ scenario: Scenario, runID: String) -> Plan {
        var context = PlanContext(runID: runID, scenario: scenario)
        var faults: [PlannedFault] = []
        for fault in scenario.spec.faults {
            faults.append(plan(fault, in: &context))
        }
        // The probes run in the default target: one not found stops the run even when no fault uses it.
        if let target = scenario.spec.target, target.pod != nil || (target.container.map { $0.found == nil } ?? false),
           !(scenario.spec.steadyState?.probes ?? []).isEmpty, !scenario.spec.faults.contains(where: { $0.target == nil }) {
            context.problems.append(PlanProblem(fault: nil, message: "\(target) (where the probes run) was not found: \(facts.containerProblems["\(target)"] ?? "it was not looked up")"))
        }
        var notes = facts.unreadable
        for pin in facts.namespaces.compactMap(\.pin) {
            notes.append("\(pin.source) is namespace \(pin.identity): pinned at \(pin.path) when the run starts; every command enters it through the pin")
        }
        for ref in scenario.containers {
            guard let found = ref.found else { continue }
            notes.append("\(found.pod.map { "pod \($0) → " } ?? "")\(ref.name) → \(found.runtime.rawValue) container \(found.shortID) (found through \(found.socket)) → pid \(found.pid)"
                + " → network namespace /proc/\(found.pid)/ns/net" + (found.pidNamespace.map { ", pid namespace pid:[\($0)]" } ?? "")
                + ", root \(found.root)" + (found.cgroups.isEmpty ? "" : ", cgroups \(found.cgroups.joined(separator: " "))"))
        }
        if scenario.spec.faults.contains(where: { !$0.type.isNetwork && ($0.target ?? scenario.spec.target).map { $0.container == nil && $0.pod == nil } == true }) {
            notes.append("netns and pid targets apply to network faults; process, disk and stress faults with such a target act on this host's processes and filesystems (a container target confines them to the container)")
        }
        return Plan(
            scenario: scenario.metadata.name.rawValue,
            runID: runID,
            maxDuration: scenario.spec.maxDuration,
            runbook: scenario.metadata.runbook,
            notes: notes + context.notes,
            steadyState: PlanSummary.steadyState(scenario.spec.steadyState),
            timeline: timeline(faults, maxDuration: scenario.spec.maxDuration),
            faults: faults,
            problems: context.problems,
            warnings: context.warnings
        )
    }

    func plan(_ fault: Fault, in context: inout PlanContext) -> PlannedFault {
        let target = fault.target ?? context.scenario.spec.target
        let end = fault.duration.map { fault.start + $0 } ?? context.scenario.spec.maxDuration
        var planned = PlannedFault(
            name: fault.name.rawValue, type: fault.type,
            target: target?.description ?? "this host",
            summary: PlanSummary.describe(fault.action, facts: facts),
            start: fault.start, end: end, every: nil, mechanism: "",
            exemptions: [], inject: [], revert: [], checks: []
        )
        context.currentFault = fault.name.rawValue
        let container = target?.container?.found
        if let ref = target?.pod {
            context.problem("\(ref) was not found: \(facts.containerProblems[ref.description] ?? "it was not looked up")")
        }
        if let ref = target?.container, ref.found == nil {
            context.problem("\(ref) was not found: \(facts.containerProblems[ref.description] ?? "it was not looked up")")
        }
        if fault.type.isNetwork, let target, let namespace = facts.namespace(target), !namespace.exists {
            context.problem("\(target) cannot be entered: \(namespace.unreadable ?? "not found")")
        }
        if fault.type.isNetwork, let target { planned.namespace = facts.namespace(target)?.pin }
        switch fault.action {
        case .latency, .packetLoss, .corrupt, .duplicate, .reorder, .bandwidth:
            planTrafficControl(fault.action, target: target, into: &planned, context: &context)
            planned.inject = IptablesBatch.grouped(planned.inject)
        case .drop(let drop):
            planDrop(drop, target: target, into: &planned, context: &context)
            planned.inject = IptablesBatch.grouped(planned.inject)
        case .killProcess(let kill):
            planned.mechanism = "kill(2)"
            planned.every = kill.every
            planned.inject = [.call(.signal(signal: kill.signal, match: kill.match, mode: kill.mode))]
            if container != nil, kill.match.container == nil { context.problem("the processes of \(target!) cannot be told apart from the host's (it shares this host's PID namespace, or its PID namespace could not be read): process faults need a container with its own") }
            planned.revert = [.call(.nothing(why: "a killed process is not brought back (its supervisor restarts it)"))]
            planMatches(kill.match, hits: kill.mode == .all ? nil : 1, fault: fault, in: &context)
        case .pauseProcess(let pause):
            planned.mechanism = "kill(2)"
            planned.inject = [.call(.pause(match: pause.match))]
            if container != nil, pause.match.container == nil { context.problem("the processes of \(target!) cannot be told apart from the host's (it shares this host's PID namespace, or its PID namespace could not be read): process faults need a container with its own") }
            planned.revert = [.call(.resume)]
            planMatches(pause.match, hits: nil, fault: fault, in: &context)
        case .diskFill(let fill):
            var directory = fill
            if container != nil {
                // Inside the container: its path as resolved in its root, or nothing is filled.
                if let container, let startTime = container.startTime {
                    directory.owner = ProcessIdentity(pid: container.pid, startTime: startTime, name: container.name)
                }
                if let path = facts.containerPaths[fault.name.rawValue] { directory.path = path } else {
                    context.problem("'\(fill.path)' could not be found inside \(target!)")
                }
                if let device = facts.containerPathsOnHostDisk[fault.name.rawValue] {
                    // The container's own layer (or a host path mounted in) lives on one of this host's disks.
                    if case .fillTo = fill.amount {
                        context.problem("'\(fill.path)' in \(target!) is on \(device): a fillTo there fills this host's disk; give a size, or a path on a volume or tmpfs of the container")
                    } else {
                        context.notes.append("\(fault.name): '\(fill.path)' in \(target!) is on \(device): the fill takes its room from this host's disk too")
                    }
                }
            }
            let file = Self.diskFillFile(directory, runID: context.runID, fault: fault.name.rawValue)
            planned.mechanism = "fallocate(2)"
            planned.inject = [.call(.fill(file: file, fill: directory))]
            planned.revert = [.call(.unlink(file: file))]
        case .cpuStress(let cpu):
            let workers = cpu.workers ?? facts.cpuCount
            planned.mechanism = "child process"
            planned.inject = [.start([facts.executable, "hog", "cpu", "--workers", workers.map(String.init) ?? "all", "--load", "\(TimeSpan.trim(cpu.load.value))", "--duration", (end - fault.start).description]
                                     + Self.cgroupArguments(container, in: &context, target: target), .cpuHog)]
            planned.revert = [.call(.stop(started: .cpuHog, grace: .seconds(5)))]
        case .memoryStress(let memory):
            planned.mechanism = "child process"
            let amount: [String] = switch memory.amount {
            case .size(let size): ["--size", "\(size.bytes)"]
            case .fillTo(let percent): ["--fill-to", "\(TimeSpan.trim(percent.value))"]
            }
            planned.inject = [.start([facts.executable, "hog", "memory"] + amount + ["--duration", (end - fault.start).description]
                                     + Self.cgroupArguments(container, in: &context, target: target), .memoryHog)]
            planned.revert = [.call(.stop(started: .memoryHog, grace: .seconds(5)))]
        }
        return planned
    }

    /// What a process fault's match selects now, as a note, and a problem when it would hit more than its bound
    /// (`hits`: how many of the matches it hits at most; nil: all).
    func planMatches(_ match: ProcessMatch, hits: Int?, fault: Fault, in context: inout PlanContext) {
        guard let now = facts.processMatches[fault.name.rawValue] else { return }
        let shown = now.prefix(10).map(\.description).joined(separator: ", ") + (now.count > 10 ? ", ..." : "")
        context.notes.append("\(fault.name): " + (now.isEmpty ? "no process matches now" : "\(now.count) process\(now.count == 1 ? "" : "es") match now: \(shown)")
            + " (Faultline's own processes, pid 1 and kernel threads never match)")
        let hit = min(now.count, hits ?? now.count)
        if hit > match.limit {
            context.problem("\(hit) processes match \(match.description) now, more than "
                + (match.maxMatches.map { "maxMatches \($0)" } ?? "the default bound of \(ProcessMatch.defaultMaxMatches)")
                + ": narrow the match, or set match.maxMatches: \(hit) if every one is meant")
        }
    }

    /// `--cgroup DIR` for each of a container's cgroups: the hog joins them before it starts, so its load counts
    /// against the container's limits (as the container's own processes do).
    static func cgroupArguments(_ container: FoundContainer?, in context: inout PlanContext, target: NetnsTarget?) -> [String] {
        guard let container else { return [] }
        if container.cgroups.isEmpty { context.problem("the cgroups of \(target.map { "\($0)" } ?? "the container") could not be read: its stress would not count against its limits") }
        return container.cgroups.flatMap { ["--cgroup", $0] }
    }

    /// The file a disk-fill fault creates in the directory `path` (the plan's `fill` call carries it to the driver).
    static func diskFillFile(_ fill: DiskFillFault, runID: String, fault: String) -> String {
        let directory = fill.path.hasSuffix("/") ? String(fill.path.dropLast()) : fill.path
        return "\(directory)/.faultline-fill-\(runID)-\(fault)"
    }

    func timeline(_ faults: [PlannedFault], maxDuration: TimeSpan) -> [TimelineEntry] {
        var entries: [TimelineEntry] = []
        for fault in faults {
            entries.append(TimelineEntry(at: fault.start, event: .inject, fault: fault.name, detail: "\(fault.type.rawValue): \(fault.summary)"))
            if let every = fault.every {
                let count = (fault.end - fault.start).microseconds > 0 ? ((fault.end - fault.start).microseconds - 1) / every.microseconds : 0
                if count > 0 {
                    entries.append(TimelineEntry(at: fault.start + every, event: .repeatInject, fault: fault.name,
                                                 detail: "again every \(every) until \(fault.end) (\(count) more time\(count == 1 ? "" : "s"))"))
                }
            }
            if fault.type != .killProcess {
                entries.append(TimelineEntry(at: fault.end, event: .revert, fault: fault.name, detail: "\(fault.type.rawValue) reverted"))
            }
        }
        entries.append(TimelineEntry(at: maxDuration, event: .deadline, fault: nil,
                                     detail: "maxDuration: anything still active is reverted"))
        let order: [TimelineEntry.Event: Int] = [.revert: 0, .inject: 1, .repeatInject: 2, .deadline: 3]
        return entries.enumerated().sorted {
            ($0.element.at, order[$0.element.event]!, $0.offset) < ($1.element.at, order[$1.element.event]!, $1.offset)
        }.map(\.element)
    }

    /// Resolves filter hosts to networks; a name that did not resolve is a problem and is left out.
    func networks(_ hosts: [HostSpec]?, context: inout PlanContext) -> [IPNetwork]? {
        guard let hosts else { return nil }
        var result: [IPNetwork] = []
        for host in hosts {
            switch host {
            case .network(let network):
                result.append(network)
            case .name(let name):
                switch facts.resolvedHosts[name] {
                case .addresses(let addresses)?:
                    result += addresses
                    context.notes.append("host '\(name)' resolved to \(addresses.map(\.shortDescription).joined(separator: ", "))")
                case .failed(let reason)?:
                    context.problem("host '\(name)' did not resolve: \(reason)")
                case nil:
                    context.problem("host '\(name)' was not resolved")
                }
            }
        }
        return result
    }
}

/// Mutable state while one plan is built.
struct PlanContext {
    let runID: String
    let scenario: Scenario
    var currentFault: String?
    var notes: [String] = []
    var problems: [PlanProblem] = []
    var warnings: [PlanProblem] = []
    var nextChain = 1
    var nextConnmark: UInt32 = 1

    init(runID: String, scenario: Scenario) {
        self.runID = runID
        self.scenario = scenario
    }

    mutating func problem(_ message: String) {
        problems.append(PlanProblem(fault: currentFault, message: message))
    }

    mutating func warning(_ message: String) {
        warnings.append(PlanProblem(fault: currentFault, message: message))
    }

    var nextQueue: UInt16 = 0

    /// The NFQUEUE queue of the next nfqueue fault: 0xFA00-0xFAFF, spread by run id so that runs side by side differ.
    mutating func queueNumber() -> UInt16 {
        defer { nextQueue += 1 }
        let hash = runID.utf8.reduce(UInt32(2_166_136_261)) { ($0 ^ UInt32($1)) &* 16_777_619 }
        return 0xFA00 | UInt16((hash &+ UInt32(nextQueue)) & 0xFF)
    }

    mutating func chainName() -> String {
        defer { nextChain += 1 }
        return "FAULTLINE-\(runID)-\(nextChain)"
    }

    var comment: String { "faultline:\(runID):\(currentFault ?? "-")" }

    var nextIFB = 1

    /// The ifb device of the next ingress tc fault: `flt<run>i<n>` (the run id hashed when it is long), at most 15
    /// characters as the kernel allows.
    mutating func ifbName() -> String {
        defer { nextIFB += 1 }
        return "flt\(runID.count <= 8 ? runID : RunID.derived(from: runID))i\(nextIFB)"
    }
}
