import FaultlineCore
import FaultlineSystem
import Synchronization

/// kill-process: sends the signal to the matching processes (all, the oldest, or one at random).
/// Nothing can be undone; `every` repeats are the caller's, by applying again.
struct KillProcessDriver: FaultDriver {
    let fault: KillProcessFault?
    let context: DriverContext
    /// The processes signalled by every apply of this fault (its `every` repeats too).
    let tally: SignalTally?

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        guard let fault else { throw FaultlineError(.internalError, "kill-process driver without a fault") }
        let matches = ProcessSelection.matches(fault.match, context: context)
        var generator = SystemRandomNumberGenerator()
        let targets = fault.mode.pick(matches, using: &generator)
        guard !targets.isEmpty else {
            throw FaultlineError(.commandFailed, "no process matches \(fault.match.description)")
        }
        try ProcessSelection.checkBound(targets, fault.match)
        var hit: [ProcessIdentity] = []
        for process in targets where try context.signaller.send(fault.signal, to: process.identity) == .sent {
            hit.append(process.identity)
        }
        let record = RevertRecord.signalled(hit)
        tally?.add(hit)
        try await journal.record(record)
        return record
    }

    /// Every process a signal reached, over all of its applies.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        guard let tally, let fault else { return nil }
        let hit = tally.all
        return FaultEvidence(hits: Double(hit.count), unit: "processes",
                             detail: "\(fault.signal.name) sent to " + (hit.isEmpty ? "none" : ProcessIdentity.listed(hit)))
    }

    /// Active once every signalled process is gone (for SIGKILL) or was signalled (other signals).
    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        guard case .signalled(let processes) = record, !processes.isEmpty else { return .reverted }
        if fault?.signal != .kill && fault?.signal != .term { return .active }
        let alive = processes.filter { context.processes.isAlive($0) }
        return alive.isEmpty ? .active : .partial("still running: \(alive.map(\.description).joined(separator: ", "))")
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {}
}

/// The processes a match selects now (drivers, and the agent when it checks runs for conflicts).
public enum ProcessSelection {
    public static func matches(_ match: ProcessMatch, context: DriverContext) -> [ProcessRecord] {
        let fromFile = match.pidFromFile()
        // The processes first, then Faultline's among them: a guard or agent that starts in between is in the
        // second read only, never matched unprotected (read the other way round, a run starting meanwhile had its
        // guard paused by a `name: faultline` match).
        let processes = context.processes.all()
        let protected = context.protected.union(context.processes.faultlinePIDs())
        return match.select(from: processes, pidFromFile: fromFile, protected: protected)
    }

    /// Refuses to hit more processes than the match allows (`maxMatches`), naming them.
    static func checkBound(_ targets: [ProcessRecord], _ match: ProcessMatch) throws(FaultlineError) {
        guard targets.count > match.limit else { return }
        let shown = targets.prefix(5).map(\.identity.description).joined(separator: ", ")
        throw FaultlineError(.commandFailed, "\(targets.count) processes match \(match.description) (\(shown)\(targets.count > 5 ? ", ..." : "")), "
            + "more than \(match.maxMatches.map { "maxMatches \($0)" } ?? "the default bound of \(ProcessMatch.defaultMaxMatches)"): "
            + "narrow the match, or set match.maxMatches: \(targets.count) if every one is meant; nothing was signalled")
    }

}

/// The processes a kill-process fault signalled, over its applies.
final class SignalTally: Sendable {
    private let hit = Mutex<[ProcessIdentity]>([])
    func add(_ processes: [ProcessIdentity]) { hit.withLock { $0 += processes } }
    var all: [ProcessIdentity] { hit.withLock { $0 } }
}
