import FaultlineCore
import FaultlineSystem

/// tc and iptables faults: runs the plan's exact inject argv, and its revert argv to undo them.
struct NetworkDriver: FaultDriver {
    let planned: PlannedFault?
    let context: DriverContext

    var state: NetworkState { NetworkState(runner: context.runner) }

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        guard let planned else { throw FaultlineError(.internalError, "network driver without a plan") }
        let record = Self.record(of: planned)
        try await journal.record(record)
        try await Self.runInject(planned, runner: context.runner, undoing: record, with: self)
        return record
    }

    /// What undoes a plan's commands: its revert argv, and the checks that show the state.
    static func record(of planned: PlannedFault) -> RevertRecord {
        let commands = RevertRecord.commands(revert: planned.revert.compactMap { if case .command(let argv) = $0 { argv } else { nil } }, checks: planned.checks)
        return planned.namespace.map { .inNamespace($0, commands) } ?? commands
    }

    /// Runs the plan's inject argv in order; on a failure undoes `record` with `driver` and throws what failed.
    static func runInject(_ planned: PlannedFault, runner: any CommandRunner, undoing record: RevertRecord,
                          with driver: any FaultDriver) async throws(FaultlineError) {
        for action in planned.inject {
            let result: CommandResult
            switch action {
            case .command(let argv): result = try await runner.run(argv)
            case .batch(let argv, let input): result = try await runner.run(argv, input: input)
            case .start, .call: continue
            }
            let argv = result.argv
            guard result.succeeded else {
                let failure = FaultlineError(.commandFailed, "'\(ShellQuote.join(argv))' failed (exit \(result.exitCode))",
                                             cause: result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
                do { try await driver.revert(record) } catch {
                    throw FaultlineError(.commandFailed, failure.description + "; undoing the steps already taken failed too", cause: error.description)
                }
                throw failure
            }
        }
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        if case .inNamespace = record { return try await PinnedNamespaceDriver(context: context).verify(record) }
        guard case .commands(_, let checks) = record else { return .reverted }
        let (active, gone) = try await inspect(checks)
        if active.isEmpty { return .reverted }
        if gone.isEmpty { return .active }
        return .partial(active.joined(separator: "; "))
    }

    /// What of the fault is still in place, and what is gone.
    func inspect(_ checks: [StateCheck]) async throws(FaultlineError) -> (active: [String], gone: [String]) {
        var active: [String] = []
        var gone: [String] = []
        for check in checks {
            switch check {
            case .rootQdisc(let namespace, let device, let previous):
                let root = try await state.rootQdisc(namespace: namespace, device: device)
                if root?.handle == Planner.rootHandle {
                    active.append("root qdisc of \(device) is Faultline's")
                } else if root?.handle == (previous?.handle ?? "0:"), previous == nil || root?.kind == previous?.kind {
                    gone.append(device)
                } else {
                    active.append("root qdisc of \(device) is \(root.map { "\($0.kind) \($0.handle)" } ?? "missing"), expected \(previous.map { "\($0.kind) \($0.handle)" } ?? "the kernel default")")
                }
            case .chain(let namespace, let tool, let chain, let table):
                if try await state.chainExists(namespace: namespace, tool: tool, chain: chain, table: table ?? "filter") {
                    active.append("\(tool) chain \(chain) exists")
                } else {
                    gone.append(chain)
                }
            case .ingress(let namespace, let device, let ifb):
                var left: [String] = []
                if try await state.ingressQdisc(namespace: namespace, device: device) == "ingress" { left.append("\(device) has an ingress qdisc") }
                if try await state.linkExists(namespace: namespace, name: ifb) { left.append("ifb device \(ifb) exists") }
                if left.isEmpty { gone.append("\(device) ingress") } else { active += left }
            }
        }
        return (active, gone)
    }

    /// The packets its rules sent to their verdict (DROP, REJECT, the delayer's NFQUEUE) and its qdisc handled,
    /// read from the counters before its chain and qdisc go.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        if case .inNamespace = record { return try await PinnedNamespaceDriver(context: context).evidence(record) }
        guard case .commands(_, let checks) = record else { return nil }
        var packets = 0
        var parts: [String] = []
        var sources: [String] = []
        for check in checks {
            switch check {
            case .chain(let namespace, let tool, let chain, let table):
                let counters = try await state.chainCounters(namespace: namespace, tool: tool, chain: chain, table: table ?? "filter")
                sources.append("\(tool) chain \(chain)")
                for (target, verb) in [("DROP", "dropped"), ("REJECT", "rejected"), ("NFQUEUE", "sent to the delayer")] {
                    let matched = counters.filter { $0.target == target }
                    let count = matched.reduce(0) { $0 + $1.packets }
                    packets += count
                    if count > 0 {
                        parts.append("\(count) packet\(count == 1 ? "" : "s") (\(matched.reduce(0) { $0 + $1.bytes }) bytes) \(verb) by \(tool)")
                    }
                }
            case .rootQdisc(let namespace, let device, _), .ingress(let namespace, _, ifb: let device):
                guard let leaf = try await state.qdiscStatistics(namespace: namespace, device: device, handle: Planner.leafHandle) else {
                    throw FaultlineError(.commandFailed, "the fault's qdisc \(Planner.leafHandle) on '\(device)' is gone: what it did cannot be read")
                }
                sources.append("\(leaf.kind) qdisc on \(device)")
                packets += leaf.packets
                if leaf.packets > 0 || leaf.drops > 0 {
                    var text = "\(leaf.packets) packet\(leaf.packets == 1 ? "" : "s") (\(leaf.bytes) bytes) through its \(leaf.kind) qdisc on \(device)"
                    if leaf.drops > 0 { text += ", \(leaf.drops) dropped" }
                    if leaf.overlimits > 0 { text += ", \(leaf.overlimits) over its limit" }
                    parts.append(text)
                }
            }
        }
        guard !sources.isEmpty else { return nil }
        return FaultEvidence(hits: Double(packets), unit: "packets",
                             detail: parts.isEmpty ? "no packet matched (\(sources.joined(separator: ", ")))" : parts.joined(separator: "; "))
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        if case .inNamespace = record { return try await PinnedNamespaceDriver(context: context).revert(record) }
        guard case .commands(let commands, let checks) = record else { return }
        var failures: [String] = []
        // The iptables commands go as one iptables-restore batch per family (one process, all at once); a batch
        // fails whole when one of its lines does (a rule someone already removed), and then each command runs alone.
        for step in IptablesBatch.revertSteps(commands) {
            if let batch = step.batch, try await context.runner.run(batch.argv, input: batch.input).succeeded { continue }
            for argv in step.commands {
                let result = try await context.runner.run(argv)
                if !result.succeeded {
                    failures.append("'\(ShellQuote.join(argv))': \(result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
        }
        // A failed step is fine when what it removes was already gone; the checks tell.
        let left = try await inspect(checks).active
        if left.isEmpty { return }
        throw FaultlineError(.commandFailed, "revert left state behind: \(left.joined(separator: "; ")); to clean up by hand run: \(commands.map(ShellQuote.join).joined(separator: " ; "))",
                             cause: failures.joined(separator: "; "))
    }
}
