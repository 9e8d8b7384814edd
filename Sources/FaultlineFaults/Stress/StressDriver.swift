import FaultlineCore
import FaultlineSystem
import Foundation
import Synchronization

/// cpu-stress and memory-stress: a `faultline hog` child process; revert stops it (SIGTERM, then SIGKILL).
struct StressDriver: FaultDriver {
    let argv: [String]
    let context: DriverContext
    /// How long each of SIGTERM and SIGKILL is given (the plan's `stop` call says it; 5 s for a record alone).
    var grace: Duration = .seconds(5)
    /// A memory hog (its evidence is the memory it touched), else a CPU hog (the CPU time it burned).
    var memory = false

    /// How long a hog that ends at once is waited for (an allocation that fails ends it within milliseconds).
    let startCheck: Duration = .milliseconds(150)
    /// The hog, once started: `watch` tells when it ends before its time.
    let started = RunningHog()

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        let child = try context.launcher.start(argv).identity
        let record = RevertRecord.stopProcess(child)
        do {
            try await journal.record(record)
        } catch {
            try? await revert(record)
            throw error
        }
        try? await Task.sleep(for: startCheck)
        guard context.processes.isAlive(child) else {
            let status = await context.launcher.waitForExit(child.pid)
            throw FaultlineError(.commandFailed, "the stress process ended at once (exit \(status))"
                + (argv.contains("memory") ? ": the memory could not be allocated (asked: \(argv.drop { $0 != "--size" && $0 != "--fill-to" }.prefix(2).joined(separator: " ")))" : ""))
        }
        started.set(child, until: ContinuousClock.now + duration - startCheck)
        return record
    }

    /// The hog's own duration (`--duration`), after which it ends by itself.
    var duration: Duration {
        guard let index = argv.firstIndex(of: "--duration"), index + 1 < argv.count, let span = try? TimeSpan(parsing: argv[index + 1]) else { return .zero }
        return .microseconds(span.microseconds)
    }

    /// A hog that ends more than a second before its time (killed, out of memory) no longer loads the host.
    func watch(report: @escaping @Sendable (FaultReport) -> Void) async {
        guard let (child, end) = started.get() else { return }
        while !Task.isCancelled {
            if !context.processes.isAlive(child) {
                if ContinuousClock.now < end - .seconds(1) {
                    let early = (end - ContinuousClock.now).components
                    let seconds = Double(early.seconds) + Double(early.attoseconds) / 1e18
                    report(FaultReport(level: .failure, message: "the stress process \(child) ended \(String(format: "%.1f", seconds)) s early (killed? out of memory?): no load from then on"))
                }
                return
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The CPU time the hog burned, or the memory it touched (its peak resident size), read before it is stopped.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        guard case .stopProcess(let child) = record else { return nil }
        guard let usage = context.processes.usage(child) else {
            throw FaultlineError(.commandFailed, "the stress process \(child) was gone before its revert: what it did cannot be read")
        }
        if memory {
            let mebibytes = String(format: "%.1f", Double(usage.peakResidentBytes) / 1_048_576)
            return FaultEvidence(hits: Double(usage.peakResidentBytes), unit: "bytes",
                                 detail: "the stress process \(child) touched \(mebibytes) MiB (its peak resident memory); \(String(format: "%.2f", usage.cpuSeconds)) s of CPU")
        }
        return FaultEvidence(hits: (usage.cpuSeconds * 100).rounded() / 100, unit: "cpu-seconds",
                             detail: "the stress process \(child) burned \(String(format: "%.2f", usage.cpuSeconds)) s of CPU")
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
            context.launcher.reap(child.pid)
        }
        if context.processes.isAlive(child) {
            throw FaultlineError(.commandFailed, "the stress process \(child) survived SIGKILL")
        }
    }
}

/// A process a driver started and when it should end by itself, shared between `apply` and `watch`.
final class RunningHog: Sendable {
    private let value = Mutex<(ProcessIdentity, ContinuousClock.Instant)?>(nil)
    func set(_ process: ProcessIdentity, until end: ContinuousClock.Instant) { value.withLock { $0 = (process, end) } }
    func get() -> (ProcessIdentity, ContinuousClock.Instant)? { value.withLock { $0 } }
}
