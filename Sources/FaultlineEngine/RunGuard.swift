import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import FaultlineSystem
import Foundation

/// The guard: a small process that outlives the runner and reverts from the journal if the runner dies
/// (even by SIGKILL) or hangs past maxDuration plus a grace period.
public struct RunGuard: Sendable {
    let journal: Journal
    let runID: String
    let context: DriverContext
    let log: EventLog
    /// How long the guard waits for a journal write before it looks anyway, in milliseconds.
    let look: Int32

    public init(journal: Journal, runID: String, context: DriverContext, log: EventLog, look: Int32 = 200) {
        self.journal = journal
        self.runID = runID
        self.context = context
        self.log = log
        self.look = look
    }

    /// Watches until the run ends; returns false if a revert it had to make failed.
    public func watch() async -> Bool {
        guard let run = try? journal.run(runID) else {
            log.log(.note(.error, .guard, "run \(runID) is not in the journal"))
            return false
        }
        let watch = ProcessWatch(run.runner, table: context.processes)
        var why = "the runner \(run.runner) is gone"
        log.log(.note(.debug, .guard, watch == nil ? "the runner \(run.runner) is already gone" : "watching the runner \(run.runner)"))
        // Every journal write wakes the guard (a run's end is one), so it leaves as soon as its run ended; the
        // look every `look` ms stays for filesystems without inotify. A write wakes it before SQLite has made the commit
        // visible to readers (the WAL index is updated after the write), so after a write it looks again within 5 ms.
        let changes = DirectoryChanges(journal.directory)
        var timeout = look
        while let watch {
            let wake = watch.wait(timeoutMilliseconds: timeout, orChangeIn: changes)
            if wake == .exited {
                why = "the runner \(run.runner) died"
                break
            }
            timeout = wake == .changed ? 5 : look
            if let state = try? journal.run(runID)?.state, state.isFinal {
                // A run that ended with faults still in place (its own revert failed) is handed over, not dropped.
                // A journal that cannot be read is no proof that nothing is left: revert from what can be read.
                if let faults = try? journal.faults(of: runID), !faults.contains(where: \.state.mayBeActive) { return true }
                why = "the run ended with faults still in place (or its journal cannot be read)"
                break
            }
            if Date() > run.deadline {
                why = "the run passed maxDuration plus its grace period and the runner still lives"
                break
            }
        }
        // The runner may have finished its own reverts just before it ended.
        if let state = try? journal.run(runID)?.state, state.isFinal,
           let faults = try? journal.faults(of: runID), !faults.contains(where: \.state.mayBeActive),
           (try? journal.pins(of: runID))?.isEmpty == true {
            return true
        }
        log.log(.note(.warning, .guard, "\(why): reverting from the journal"))
        let recovery = Recovery(journal: journal, context: context)
        let outcomes = await recovery.revert(runID: runID, attempts: 4)
        let failed = outcomes.filter { $0.error != nil }
        for outcome in outcomes {
            log.log(outcome.error.map { .revertFailed(fault: outcome.name, error: $0.description, seconds: outcome.duration) }
                    ?? .reverted(fault: outcome.name, seconds: outcome.duration, by: "guard"))
            if let journalError = outcome.journalError {
                log.log(.note(.error, .journal, "the journal could not record this: \(journalError)", fault: outcome.name))
            }
        }
        var pinsLeft: [FaultlineError] = []
        if failed.isEmpty {
            pinsLeft = recovery.releasePins(runID: runID)
            for failure in pinsLeft { log.log(.note(.error, .pin, "\(failure)")) }
        }
        do { try journal.setState(.failed, of: runID, reason: "\(why); the guard reverted \(outcomes.count - failed.count) of \(outcomes.count) faults") } catch {
            log.log(.note(.error, .journal, "cannot record the run's end: \(error)"))
        }
        return failed.isEmpty && pinsLeft.isEmpty
    }
}
