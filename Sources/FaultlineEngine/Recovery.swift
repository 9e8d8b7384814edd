import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import FaultlineSystem
import Foundation

/// Reverts what the journal says is still on the host: used by the guard, `faultline recover`, and at start of `run`.
/// Nothing on this path is swallowed: a journal that cannot be read or written is a failed outcome, said.
public struct Recovery: Sendable {
    let journal: Journal
    let context: DriverContext

    public init(journal: Journal, context: DriverContext) {
        self.journal = journal
        self.context = context
    }

    /// The outcome of reverting one journalled fault.
    public struct Outcome: Sendable {
        /// The fault's name ("journal" when the journal itself could not be read).
        public var name: String
        public var fault: FaultEntry?
        /// Why the revert failed (what may still be on the host).
        public var error: FaultlineError?
        /// Seconds the revert took.
        public var duration: Double = 0
        /// The revert worked, but the journal could not record it (a full state filesystem, say).
        public var journalError: FaultlineError?
        /// A namespace pin that could not be removed (a mount left, no fault): it blocks no later run.
        public var isPin = false
    }

    /// Reverts the pending faults of `runID` (newest first) and records each result; a revert that fails is tried
    /// again, `attempts` times in all, after 0.2 s, 0.8 s, 3.2 s, then every 5 s (a host short of descriptors for a moment).
    public func revert(runID: String, attempts: Int = 3) async -> [Outcome] {
        var outcomes = await revertOnce(runID: runID)
        var delay = 0.2
        for _ in 1..<max(1, attempts) where outcomes.contains(where: { $0.error != nil && ($0.fault != nil || $0.name == "journal") }) {
            try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
            delay = min(delay * 4, 5)
            let again = await revertOnce(runID: runID)
            // Keep the first try's successes; the faults still pending are what the new try says of them.
            let retried = Set(again.map(\.name))
            outcomes = outcomes.filter { !retried.contains($0.name) } + again
        }
        return outcomes
    }

    func revertOnce(runID: String) async -> [Outcome] {
        let rows: (readable: [FaultEntry], unreadable: [(name: String, error: FaultlineError)])
        do { rows = try journal.faultRows(of: runID) } catch {
            return [Outcome(name: "journal", fault: nil, error: FaultlineError(.io, "cannot read what run \(runID) applied, so nothing was reverted", cause: error.description))]
        }
        var outcomes: [Outcome] = rows.unreadable.map { Outcome(name: $0.name, fault: nil, error: $0.error) }
        for fault in rows.readable.filter(\.state.mayBeActive).reversed() {
            let driver = Drivers.driver(for: fault.record, context: context)
            let began = ContinuousClock.now
            do {
                try await driver.revert(fault.record)
                var outcome = Outcome(name: fault.name, fault: fault, error: nil, duration: (ContinuousClock.now - began).seconds)
                do { try journal.setState(.reverted, runID: runID, fault: fault.name) } catch { outcome.journalError = error }
                outcomes.append(outcome)
            } catch {
                var outcome = Outcome(name: fault.name, fault: fault, error: error, duration: (ContinuousClock.now - began).seconds)
                do { try journal.setState(.revertFailed, runID: runID, fault: fault.name, error: error.description) } catch let journalError {
                    outcome.journalError = journalError
                }
                outcomes.append(outcome)
            }
        }
        return outcomes
    }

    /// Removes the namespace pins `runID` holds, once nothing of it is left in them; what could not be removed.
    public func releasePins(runID: String) -> [FaultlineError] {
        let pins: [PinnedNamespace]
        do { pins = try journal.pins(of: runID) } catch { return [error] }
        var failures: [FaultlineError] = []
        for pin in pins {
            do {
                try NamespacePin.release(pin.path)
                try journal.forgetPin(pin.path, runID: runID)
            } catch {
                failures.append(error)
            }
        }
        return failures
    }

    /// Runs whose runner is gone (or that ended) but whose faults may still be on the host or whose namespace pins
    /// are still held, and runs whose runner died before they ended.
    public func orphanedRuns() throws(FaultlineError) -> [RunEntry] {
        let pendingRuns = try journal.runsWithPendingFaults().union(journal.runsWithPins())
        return try journal.runs().filter { run in
            let runnerGone = !context.processes.isAlive(run.runner)
            return (pendingRuns.contains(run.id) && (run.state.isFinal || runnerGone)) || (!run.state.isFinal && runnerGone)
        }
    }

    /// Reverts every orphaned run and removes its pins; returns what was done.
    public func recoverAll() async throws(FaultlineError) -> [(run: RunEntry, outcomes: [Outcome])] {
        var result: [(RunEntry, [Outcome])] = []
        for run in try orphanedRuns() {
            var outcomes = await revert(runID: run.id)
            if !outcomes.contains(where: { $0.error != nil }) {
                for failure in releasePins(runID: run.id) {
                    outcomes.append(Outcome(name: "namespace pin", fault: nil, error: failure, isPin: true))
                }
            }
            let reason: String? = if outcomes.contains(where: { $0.error != nil }) {
                "recovery could not revert everything"
            } else if !run.state.isFinal {
                "the runner died; recovered"
            } else {
                nil
            }
            // A run that ended on its own keeps its verdict unless something could not be undone.
            try journal.setState(reason == nil ? run.state : .failed, of: run.id, reason: reason)
            result.append((run, outcomes))
        }
        return result
    }
}
