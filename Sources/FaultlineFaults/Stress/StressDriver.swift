import FaultlineCore
import FaultlineSystem

/// cpu-stress and memory-stress: a `faultline hog` child process; revert stops it (SIGTERM, then SIGKILL).
struct StressDriver: FaultDriver {
    let argv: [String]
    let context: DriverContext
    let grace: Duration = .seconds(5)

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        let child = try ChildProcess.spawn(argv, table: context.processes)
        let record = RevertRecord.stopProcess(child)
        do {
            try await journal.record(record)
        } catch {
            try? await revert(record)
            throw error
        }
        return record
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        guard case .stopProcess(let child) = record else { return .reverted }
        return context.processes.isAlive(child) ? .active : .reverted
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        guard case .stopProcess(let child) = record else { return }
        for (signal, wait) in [(Signal.term, grace), (Signal.kill, grace)] {
            guard context.processes.isAlive(child) else { return }
            _ = try context.signaller.send(signal, to: child)
            let clock = ContinuousClock()
            let deadline = clock.now + wait
            while clock.now < deadline, context.processes.isAlive(child) {
                try? await Task.sleep(for: .milliseconds(10))
            }
            ChildProcess.reap(child.pid)
        }
        if context.processes.isAlive(child) {
            throw FaultlineError(.commandFailed, "the stress process \(child) survived SIGKILL")
        }
    }
}
