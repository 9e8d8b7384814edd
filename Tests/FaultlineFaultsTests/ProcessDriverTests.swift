import FaultlineCore
@testable import FaultlineFaults
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// kill-process and pause-process on real child processes with a unique name.
@Suite(.serialized) struct ProcessDriverTests {
    func fault(_ yaml: String) throws -> Fault {
        try ScenarioLoader.load(yaml: ScenarioHarness.scenario(faults: yaml), file: "test.yaml").spec.faults[0]
    }

    func driver(_ fault: Fault) -> any FaultDriver {
        let plan = Planner(facts: HostFacts()).plan(Scenario(metadata: Metadata(name: try! ResourceName(parsing: "t")),
                                                             spec: ScenarioSpec(maxDuration: .seconds(60), faults: [fault])), runID: "t3")
        return Drivers.driver(for: fault, planned: plan.faults[0], runID: "t3", context: DriverContext())
    }

    func eventually(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<200 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func killByNameHitsEveryMatchAndNothingElse() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let first = try sleepers.start(), second = try sleepers.start()
        let record = try await driver(try fault("    - {name: k, type: kill-process, match: {name: \(sleepers.name)}}"))
            .apply(journal: MemoryJournal())
        #expect(record == .signalled([first, second]))
        #expect(await eventually { sleepers.isGone(first) && sleepers.isGone(second) })
    }

    @Test func killOneByCmdlineTakesTheOldest() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let older = try sleepers.start(["300", "7"])
        try await Task.sleep(for: .milliseconds(20))
        let newer = try sleepers.start(["300", "7"])
        let other = try sleepers.start(["300", "8"])
        let driver = driver(try fault("    - {name: k, type: kill-process, mode: one, signal: SIGTERM, match: {cmdline: '\(sleepers.name) 300 7$'}}"))
        let record = try await driver.apply(journal: MemoryJournal())
        #expect(record == .signalled([older]))
        #expect(await eventually { sleepers.isGone(older) })
        #expect(!sleepers.isGone(newer))
        #expect(!sleepers.isGone(other))
    }

    @Test func killByPidFile() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start(), bystander = try sleepers.start()
        let pidFile = sleepers.directory.appendingPathComponent("app.pid").path
        try "\(target.pid)\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        _ = try await driver(try fault("    - {name: k, type: kill-process, match: {pidFile: \(pidFile)}}")).apply(journal: MemoryJournal())
        #expect(await eventually { sleepers.isGone(target) })
        #expect(!sleepers.isGone(bystander))
    }

    @Test func noMatchIsAnErrorNotASilentSuccess() async throws {
        await #expect(throws: FaultlineError.self) {
            _ = try await driver(try fault("    - {name: k, type: kill-process, match: {name: flt-no-such-proc}}")).apply(journal: MemoryJournal())
        }
    }

    @Test func pauseStopsAndRevertResumes() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let child = try sleepers.start()
        let driver = driver(try fault("    - {name: p, type: pause-process, match: {name: \(sleepers.name)}}"))
        let journal = MemoryJournal()
        let record = try await driver.apply(journal: journal)
        #expect(journal.all == [.resume([child])])
        #expect(sleepers.state(child) == "T")
        #expect(try await driver.verify(record) == .active)
        try await driver.revert(record)
        #expect(await eventually { sleepers.state(child) == "S" }, "resumed, and asleep again (state S)")
        #expect(try await driver.verify(record) == .reverted)
        try await driver.revert(record)
    }

    @Test func aReusedPidIsNeverSignalled() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let child = try sleepers.start()
        // The identity a journal kept for an earlier process that had this pid: another start time.
        let stale = ProcessIdentity(pid: child.pid, startTime: child.startTime - 1, name: child.name)
        #expect(try ProcessSignaller().send(.kill, to: stale) == .gone)
        try await Task.sleep(for: .milliseconds(50))
        #expect(sleepers.state(child) == "S")
        // Reverting a pause of the earlier process leaves this one alone too.
        try await Drivers.driver(for: .resume([stale]), context: DriverContext()).revert(.resume([stale]))
        #expect(sleepers.state(child) == "S")
    }

    @Test func faultlineNeverHitsItself() throws {
        let me = ProcessTable().read(getpid())!
        let match = ProcessMatch(pid: me.pid)
        #expect(match.select(from: [me], pidFromFile: nil, protected: ProcessTable().protectedPIDs()).isEmpty)
    }
}
