/// What a run will do, step by step, with the exact commands that inject and revert each fault.
public struct Plan: Sendable, Hashable, Codable {
    public var scenario: String
    public var runID: String
    public var maxDuration: TimeSpan
    public var runbook: String?
    /// Facts that could not be read, and other things the reader should know.
    public var notes: [String]
    public var steadyState: [String]
    public var timeline: [TimelineEntry]
    public var faults: [PlannedFault]
    /// Reasons the run would not start as planned.
    public var problems: [PlanProblem]
    /// What looks wrong from the target's facts but does not stop the run: a filter that can never match what was
    /// probably meant (an ingress drop whose `to` names a port the target listens on).
    public var warnings: [PlanProblem] = []
}

/// One moment of the timeline.
public struct TimelineEntry: Sendable, Hashable, Codable {
    public enum Event: String, Sendable, Hashable, Codable {
        case inject, repeatInject = "repeat", revert, deadline
    }

    /// Offset from the start of the method.
    public var at: TimeSpan
    public var event: Event
    public var fault: String?
    public var detail: String
}

/// One fault as it will be applied: where, when, and the exact actions both ways.
public struct PlannedFault: Sendable, Hashable, Codable {
    public var name: String
    public var type: FaultType
    /// `netns app`, or `this host` for the agent's own namespaces.
    public var target: String
    public var summary: String
    public var start: TimeSpan
    public var end: TimeSpan
    public var every: TimeSpan?
    /// `netem`, `nfqueue`, `iptables`, ... — how it is injected.
    public var mechanism: String
    public var exemptions: [Exemption]
    public var inject: [PlanAction]
    public var revert: [PlanAction]
    /// How to tell, on the host, that the fault is active and that it is gone again.
    public var checks: [StateCheck] = []
    /// The pinned target namespace its commands enter, when it has one.
    public var namespace: PinnedNamespace?

    public init(name: String, type: FaultType, target: String, summary: String, start: TimeSpan, end: TimeSpan, every: TimeSpan?,
                mechanism: String, exemptions: [Exemption], inject: [PlanAction], revert: [PlanAction], checks: [StateCheck]) {
        self.name = name
        self.type = type
        self.target = target
        self.summary = summary
        self.start = start
        self.end = end
        self.every = every
        self.mechanism = mechanism
        self.exemptions = exemptions
        self.inject = inject
        self.revert = revert
        self.checks = checks
    }
}

/// A piece of host state that shows whether a network fault is in place.
public enum StateCheck: Sendable, Hashable, Codable {
    /// The interface's root qdisc: Faultline's while active; the previous one (kind and handle) after revert.
    case rootQdisc(namespace: String?, device: String, previous: RootQdisc?)
    /// An iptables or ip6tables chain (of `table`, filter when nil): present while active, gone after revert.
    case chain(namespace: String?, tool: String, chain: String, table: String? = nil)
    /// An ingress tc fault: the interface's ingress qdisc that redirects to `ifb`, and that ifb device with the
    /// fault's qdiscs: present while active, both gone after revert.
    case ingress(namespace: String?, device: String, ifb: String)

}

/// A command run as argv, a process started for the fault's lifetime, or a kernel call made by faultline itself,
/// each with everything its driver needs: the driver acts from the plan alone.
public enum PlanAction: Sendable, Hashable, Codable {
    case command([String])
    /// A command fed `input` on its standard input: `iptables-restore --noflush` with the lines of a fault's rules
    /// (see `IptablesBatch`).
    case batch([String], input: String)
    /// A child process that runs until the revert stops it (the nfqueue delayer, a stress hog), and what it is.
    case start([String], StartedProcess)
    case call(KernelCall)

    /// JSON: `{"argv": [...]}`, `{"argv": [...], "input": "..."}`, `{"start": [...], "process": "delayer"}`,
    /// `{"call": "what it does", "kernel": {...}}`.
    private enum CodingKeys: String, CodingKey { case argv, input, start, process, call, kernel }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let argv = try c.decodeIfPresent([String].self, forKey: .argv) {
            self = try c.decodeIfPresent(String.self, forKey: .input).map { .batch(argv, input: $0) } ?? .command(argv)
        } else if let argv = try c.decodeIfPresent([String].self, forKey: .start) {
            self = .start(argv, try c.decode(StartedProcess.self, forKey: .process))
        } else {
            self = .call(try c.decode(KernelCall.self, forKey: .kernel))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .command(let argv): try c.encode(argv, forKey: .argv)
        case .batch(let argv, let input):
            try c.encode(argv, forKey: .argv)
            try c.encode(input, forKey: .input)
        case .start(let argv, let process):
            try c.encode(argv, forKey: .start)
            try c.encode(process, forKey: .process)
        case .call(let call):
            try c.encode(call.description, forKey: .call)
            try c.encode(call, forKey: .kernel)
        }
    }
}

/// Traffic a network fault leaves alone for safety, and why.
public struct Exemption: Sendable, Hashable, Codable {
    public var reason: String
    public var traffic: String
}

/// Something that stops the run from starting as planned.
public struct PlanProblem: Sendable, Hashable, Codable, CustomStringConvertible {
    public var fault: String?
    public var message: String

    public var description: String { fault.map { "fault '\($0)': \(message)" } ?? message }
}

extension PlannedFault {
    /// The NFQUEUE queue the fault's delayer binds, if it has one.
    public var queue: UInt16? {
        for case .start(let argv, _) in inject {
            if let index = argv.firstIndex(of: "--queue"), index + 1 < argv.count { return UInt16(argv[index + 1]) }
        }
        return nil
    }

    /// The same fault with its delayer bound to `queue` (its `--queue` and the rules' `--queue-num`).
    public func usingQueue(_ queue: UInt16) -> PlannedFault {
        guard let old = self.queue else { return self }
        func replaced(_ argv: [String]) -> [String] {
            var argv = argv
            for index in argv.indices.dropLast() where (argv[index] == "--queue" || argv[index] == "--queue-num") && argv[index + 1] == "\(old)" {
                argv[index + 1] = "\(queue)"
            }
            return argv
        }
        var copy = self
        copy.inject = inject.map { action in
            switch action {
            case .start(let argv, let process): .start(replaced(argv), process)
            case .command(let argv): .command(replaced(argv))
            case .batch(let argv, let input):
                .batch(argv, input: input.split(separator: "\n", omittingEmptySubsequences: false)
                    .map { replaced($0.split(separator: " ").map(String.init)).joined(separator: " ") }.joined(separator: "\n"))
            case .call: action
            }
        }
        copy.mechanism = mechanism.replacingOccurrences(of: "queue \(old)", with: "queue \(queue)")
        return copy
    }
}
