import FaultlineCore
@testable import FaultlineEngine
import FaultlineFaults
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// The guard leaves when the journal records its run's end, woken by that write, not at its next timed look.
@Suite struct RunGuardWakeTests {
    @Test("a run's end in the journal wakes its guard at once: with a 60 s look, it leaves within seconds, reverting nothing")
    func theRunsEndWakesTheGuard() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let runner = try sleepers.start()
        let directory = NSTemporaryDirectory() + "flt-guard-wake-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = try Journal(directory: directory)
        try journal.begin(RunEntry(id: "wake1", scenario: "wake", state: .running, startedAt: Date(), runner: runner,
                                   deadline: Date().addingTimeInterval(3600)))
        let log = EventLog(format: .text, run: "wake1", scenario: "wake", minimum: .debug, write: { _ in })
        let guardRun = RunGuard(journal: journal, runID: "wake1", context: DriverContext(protected: []), log: log, look: 60_000)
        let clock = ContinuousClock()
        let started = clock.now
        let watching = Task { await guardRun.watch() }
        // Let the guard settle into its wait, then end the run as the runner does.
        try await Task.sleep(for: .milliseconds(300))
        try journal.setState(.succeeded, of: "wake1")
        let ended = clock.now
        let clean = await watching.value
        #expect(clean, "the guard reported a failed revert")
        #expect(clock.now - ended < .seconds(10), "the guard left \(clock.now - ended) after the run's end (its timed look is 60 s)")
        #expect(clock.now - started >= .milliseconds(300), "the guard left before the run ended")
    }
}
