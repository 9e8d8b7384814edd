import FaultlineCore
import FaultlineSystem

/// pause-process: SIGSTOP to every matching process, SIGCONT on revert; both checked in /proc.
struct PauseProcessDriver: FaultDriver {
    let match: ProcessMatch
    let context: DriverContext
    /// How long a state change may take to show in /proc.
    let settle: Duration = .seconds(2)

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        let matches = ProcessSelection.matches(match, context: context)
        guard !matches.isEmpty else {
            throw FaultlineError(.commandFailed, "no process matches \(match.description)")
        }
        try ProcessSelection.checkBound(matches, match)
        let targets = matches.map(\.identity)
        let record = RevertRecord.resume(targets)
        try await journal.record(record)
        do throws(FaultlineError) {
            for process in targets { _ = try context.signaller.send(.stop, to: process) }
            let stopped = await wait(targets) { $0.isStopped }
            guard stopped else {
                throw FaultlineError(.commandFailed, "SIGSTOP was sent but not every process stopped within \(settle)")
            }
        } catch {
            try? await revert(record)
            throw error
        }
        return record
    }

    /// The processes it stopped and that are still stopped, read before they are resumed.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        guard case .resume(let processes) = record else { return nil }
        let stopped = processes.compactMap(current).filter(\.isStopped).map(\.identity)
        let gone = processes.filter { current($0) == nil }.count
        var detail = "stopped (SIGSTOP): " + (stopped.isEmpty ? "none any more" : ProcessIdentity.listed(stopped))
        if gone > 0 { detail += "; \(gone) ended while paused" }
        let running = processes.count - stopped.count - gone
        if running > 0 { detail += "; \(running) running again (resumed by something else)" }
        return FaultEvidence(hits: Double(stopped.count), unit: "processes", detail: detail)
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        guard case .resume(let processes) = record else { return .reverted }
        let living = processes.compactMap(current)
        let stopped = living.filter(\.isStopped)
        if stopped.isEmpty { return .reverted }
        if stopped.count == living.count { return .active }
        return .partial("stopped: \(stopped.map(\.identity.description).joined(separator: ", "))")
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        guard case .resume(let processes) = record else { return }
        for process in processes { _ = try context.signaller.send(.cont, to: process) }
        guard await wait(processes, until: { !$0.isStopped }) else {
            let still = processes.compactMap(current).filter(\.isStopped)
            throw FaultlineError(.commandFailed, "SIGCONT was sent but \(still.map(\.identity.description).joined(separator: ", ")) is still stopped; resume by hand with: kill -CONT \(still.map { "\($0.pid)" }.joined(separator: " "))")
        }
    }

    /// The process now, if it is still the same one.
    func current(_ identity: ProcessIdentity) -> ProcessRecord? {
        guard let now = context.processes.read(identity.pid), now.startTime == identity.startTime, now.state != "Z" else { return nil }
        return now
    }

    /// Polls /proc until every still-living process satisfies `condition`: first after 0.5 ms, then twice as long
    /// each time up to 10 ms (a signal usually shows within a millisecond; a fixed 10 ms put that much into every
    /// inject and revert).
    func wait(_ processes: [ProcessIdentity], until condition: (ProcessRecord) -> Bool) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + settle
        var pause = Duration.microseconds(500)
        while true {
            if processes.compactMap(current).allSatisfy(condition) { return true }
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(10))
        }
    }
}
