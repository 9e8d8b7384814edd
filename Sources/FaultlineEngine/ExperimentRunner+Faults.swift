import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import FaultlineProbes
import FaultlineSystem
import Foundation
import Synchronization
import Tracing

/// One fault's life in the method: inject at its time, repeat, watch its engine, revert.
extension ExperimentRunner {
    /// Applies one fault at its start (after the faults before it in `order` have tried), repeats it (`every`), and
    /// reverts it at its end or when the method stops. Once the run is stopping, it is not injected at all.
    func runFault(_ fault: Fault, _ planned: PlannedFault, start: ContinuousClock.Instant, turn: Int, order: InjectionOrder,
                  progress: FaultProgress, offset: @escaping @Sendable () -> Double, span run: RunSpan) async {
        let name = fault.name.rawValue
        let stopped = await stop.sleep(until: start + .microseconds(fault.start.microseconds))
        let clock = ContinuousClock()
        let due = clock.now
        await order.wait(turn)
        let turnCame = clock.now
        var tried = false
        defer { if !tried { order.finish(turn) } }
        if stopped || stop.reason != nil { return }
        // The fault's span runs from the inject to the end of its revert.
        let span = run.child("fault \(name)")
        span.set("faultline.fault.name", name)
        span.set("faultline.fault.type", fault.type.rawValue)
        span.set("faultline.fault.target", planned.target)
        span.set("faultline.fault.summary", planned.summary)
        defer {
            let entry = progress[name]
            span.set("faultline.fault.state", entry.state.rawValue)
            if let error = entry.error { span.fail(error) }
            span.end()
        }
        let driver = settings.drivers(planned, context)
        let writer = JournalWriter(journal: journal, runID: settings.runID, fault: name, type: fault.type)
        var record: RevertRecord
        do {
            record = try await driver.apply(journal: writer)
            let applied = clock.now
            try journal.record(runID: settings.runID, fault: name, type: fault.type, state: .active, record: record)
            // An inject that took long is said, with where the time went: the run's verdict may depend on it.
            let took = clock.now - due
            if took > .seconds(1) {
                log.log(.note(.warning, .inject, "fault '\(name)' took \(String(format: "%.1f", took.seconds)) s to inject: "
                              + "\(String(format: "%.2f", (turnCame - due).seconds)) s waiting for the faults before it, "
                              + "\(String(format: "%.2f", (applied - turnCame).seconds)) s applying (its journal writes included), "
                              + "\(String(format: "%.2f", (clock.now - applied).seconds)) s recording it active", fault: name))
            }
            // An inject that took so long that the method ended meanwhile: in place, but never watched.
            let late = stop.reason != nil
            progress.update(name) { $0.injectedAt = offset(); $0.state = .active; $0.afterMethod = late }
            log.log(.injected(fault: name, summary: planned.summary, again: false))
            span.event("inject")
            tried = true
            order.finish(turn)
        } catch {
            progress.update(name) { $0.error = error.description; $0.state = .failed }
            log.log(.injectFailed(fault: name, error: error.description, again: false))
            if let last = writer.lastRecord {
                do {
                    try await driver.revert(last)
                    try? journal.setState(.failed, runID: settings.runID, fault: name, error: error.description)
                } catch let revertError {
                    try? journal.setState(.revertFailed, runID: settings.runID, fault: name, error: revertError.description)
                    progress.update(name) { $0.state = .revertFailed; $0.error = "\(error); revert: \(revertError)" }
                }
            }
            stop.fire(.abort(.injectFailed, "fault '\(name)' could not be injected: \(error)"))
            return  // the deferred finish lets the next fault see the abort
        }
        // A userspace engine's warnings while the fault is in place; cancelled (after a last read) once it is reverted.
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await driver.watch { report in
                    // Once its revert began, a stress process or delayer that ends is the revert's doing.
                    if report.level == .failure, progress[name].reverting { return }
                    if report.level == .failure {
                        progress.update(name) { $0.degraded = $0.degraded.map { "\($0); \(report.message)" } ?? report.message }
                        log.log(.degraded(fault: name, why: report.message))
                    } else {
                        log.log(.engine(fault: name, level: report.level == .warning ? .warning : .info, message: report.message))
                    }
                }
            }
            let end = start + .microseconds(planned.end.microseconds)
            if let every = planned.every {
                var next = start + .microseconds(fault.start.microseconds + every.microseconds)
                while next < end, await !stop.sleep(until: next) {
                    do {
                        record = try await driver.apply(journal: writer)
                        log.log(.injected(fault: name, summary: planned.summary, again: true))
                        span.event("inject")
                    } catch {
                        log.log(.injectFailed(fault: name, error: "\(error)", again: true))
                    }
                    next = next + .microseconds(every.microseconds)
                }
            }
            _ = await stop.sleep(until: end)
            progress.update(name) { $0.reverting = true }
            if let restarted = restartedContainer(of: fault) {
                progress.update(name) { $0.note = restarted }
                log.log(.note(.warning, .revert, restarted, fault: name))
            }
            // What it did, read while it is still in place (its counters go with its chain).
            do throws(FaultlineError) {
                if let evidence = try await driver.evidence(record) {
                    progress.update(name) { $0.evidence = evidence }
                    log.log(.evidence(fault: name, evidence: evidence))
                }
            } catch {
                progress.update(name) { $0.evidenceError = error.description }
                log.log(.note(.warning, .evidence, "cannot read what the fault did: \(error)", fault: name))
            }
            let began = ContinuousClock.now
            do throws(FaultlineError) {
                try await driver.revert(record)
                progress.update(name) { $0.revertedAt = offset(); $0.state = $0.degraded == nil ? .reverted : .degraded }
                log.log(.reverted(fault: name, seconds: (ContinuousClock.now - began).seconds))
                span.event("revert")
                // The fault is gone; only the record of it may fail (a full state filesystem): said as that.
                do { try journal.setState(.reverted, runID: settings.runID, fault: name) } catch {
                    log.log(.note(.error, .journal, "reverted, but the journal could not record it (the guard or recover will find it gone): \(error)", fault: name))
                }
            } catch {
                try? journal.setState(.revertFailed, runID: settings.runID, fault: name, error: error.description)
                progress.update(name) { $0.state = .revertFailed; $0.error = error.description; $0.revertedAt = nil }
                log.log(.revertFailed(fault: name, error: error.description, seconds: (ContinuousClock.now - began).seconds))
            }
            group.cancelAll()
        }
    }

    /// Why the container (or pod's container) the fault acts on is no longer the one found when the run started:
    /// its process ended, so the runtime restarted or stopped it during the fault. Nil when it is the same, or the
    /// fault's target is no container.
    func restartedContainer(of fault: Fault) -> String? {
        guard let ref = (fault.target ?? scenario.spec.target)?.container, let found = ref.found, let startTime = found.startTime,
              !context.processes.isAlive(ProcessIdentity(pid: found.pid, startTime: startTime, name: found.name)) else { return nil }
        let how = fault.type.isNetwork ? "the revert goes through the network namespace held since the start"
            : "what the fault did to that process ended with it"
        return "\(ref) was restarted or stopped during the fault: its process \(found.pid) is gone; \(how)"
    }

    /// Starts the guard in its own session, so a Ctrl-C to the runner's terminal does not reach it, with its output
    /// in a file of its own: a closed or stalled pipe the runner writes to cannot stop the guard's revert.
    func startGuard() -> ProcessIdentity? {
        guard let argv = settings.guardCommand else { return nil }
        var output = "/dev/null"
        if let guardLog = settings.guardLog {
            do {
                try FileManager.default.createDirectory(atPath: (guardLog as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                output = guardLog
            } catch {
                log.log(.note(.warning, .guard, "cannot make the folder of the guard's log '\(guardLog)': \(error); the guard logs nowhere"))
            }
        }
        do {
            let child = try context.launcher.start(argv, output: .file(output), newSession: true).identity
            log.log(.note(.debug, .guard, "guard started as pid \(child.pid), logging to \(output)"))
            return child
        } catch {
            log.log(.note(.warning, .guard, "could not start the guard: \(error); faults are still reverted by this process"))
            return nil
        }
    }

    /// The guard leaves once it sees the run ended; collect it (a second at most).
    func reapGuard(_ child: ProcessIdentity) async {
        await context.launcher.reap(child.pid, within: .seconds(1))
    }
}
