import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import FaultlineSystem
import Foundation

/// Reverts what the journal says is still on the host: used by the guard, `faultline recover`, and at start of `run`.
public struct Recovery: Sendable {
    let journal: Journal
    let context: DriverContext

    public init(journal: Journal, context: DriverContext) {
        self.journal = journal
        self.context = context
    }

    /// The outcome of reverting one journalled fault.
    public struct Outcome: Sendable {
        public var fault: FaultEntry
        public var error: FaultlineError?
        /// Seconds the revert took.
        public var duration: Double = 0
    }

    /// Reverts the pending faults of `runID` (newest first) and records each result.
    public func revert(runID: String) async -> [Outcome] {
        let pending = ((try? journal.faults(of: runID)) ?? []).filter(\.state.mayBeActive).reversed()
        var outcomes: [Outcome] = []
        for fault in pending {
            let driver = Drivers.driver(for: fault.record, context: context)
            let began = ContinuousClock.now
            do {
                try await driver.revert(fault.record)
                try? journal.setState(.reverted, runID: runID, fault: fault.name)
                outcomes.append(Outcome(fault: fault, error: nil, duration: (ContinuousClock.now - began).seconds))
            } catch {
                try? journal.setState(.revertFailed, runID: runID, fault: fault.name, error: error.description)
                outcomes.append(Outcome(fault: fault, error: error, duration: (ContinuousClock.now - began).seconds))
            }
        }
        return outcomes
    }

    /// Runs whose runner is gone but whose faults may still be on the host.
    public func orphanedRuns() throws(FaultlineError) -> [RunEntry] {
        let pendingRuns = Set(try journal.pendingFaults().map(\.runID))
        return try journal.runs().filter { run in
            pendingRuns.contains(run.id) && (run.state.isFinal || !context.processes.isAlive(run.runner))
        }
    }

    /// Reverts every orphaned run; returns what was done.
    public func recoverAll() async throws(FaultlineError) -> [(run: RunEntry, outcomes: [Outcome])] {
        var result: [(RunEntry, [Outcome])] = []
        for run in try orphanedRuns() {
            let outcomes = await revert(runID: run.id)
            let reason: String? = if outcomes.contains(where: { $0.error != nil }) {
                "recovery could not revert everything"
            } else if !run.state.isFinal {
                "the runner died; recovered"
            } else {
                nil
            }
            // A run that ended on its own keeps its verdict unless something could not be undone.
            try? journal.setState(reason == nil ? run.state : .failed, of: run.id, reason: reason)
            result.append((run, outcomes))
        }
        return result
    }
}
