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
        return Drivers.driver(for: plan.faults[0], context: DriverContext())
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

    @Test("a process named faultline (a guard, a delayer, another run) is never matched, not even by pid or cmdline")
    func faultlineProcessesAreNeverMatched() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        // A copy of sleep called `faultline` stands for another run's guard: its name (comm) is faultline.
        let impostor = sleepers.directory.appendingPathComponent("faultline").path
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: impostor)
        let child = try ChildProcess.spawn([impostor, "300"], table: ProcessTable())
        defer {
            _ = try? ProcessSignaller().send(.kill, to: child)
            _ = try? ProcessSignaller().send(.cont, to: child)
            for _ in 0..<200 where !ChildProcess.reap(child.pid) { usleep(5_000) }
        }
        #expect(ProcessTable().faultlinePIDs().contains(child.pid))
        for selector in ["cmdline: '^\(impostor) 300$'", "pid: \(child.pid)", "name: faultline"] {
            let pause = try fault("    - {name: p, type: pause-process, match: {\(selector)}}")
            await #expect(throws: FaultlineError.self, "\(selector)") { _ = try await driver(pause).apply(journal: MemoryJournal()) }
            #expect(sleepers.state(child) == nil || ProcessTable().read(child.pid)?.state != "T", "\(selector) froze it")
        }
    }

    @Test("pid 1 and kernel threads (no command line) are never matched, even by pid")
    func pidOneAndKernelThreadsAreNeverMatched() {
        let init1 = ProcessRecord(pid: 1, parentPID: 0, name: "systemd", arguments: ["/sbin/init"], uid: 0, user: "root", state: "S", startTime: 1)
        let kthread = ProcessRecord(pid: 2, parentPID: 0, name: "kthreadd", arguments: [], uid: 0, user: "root", state: "S", startTime: 1)
        #expect(ProcessMatch(pid: 1).select(from: [init1], pidFromFile: nil, protected: []).isEmpty)
        #expect(ProcessMatch(pid: 2).select(from: [kthread], pidFromFile: nil, protected: []).isEmpty)
        #expect(ProcessMatch(user: "root").select(from: [init1, kthread], pidFromFile: nil, protected: []).isEmpty)
    }

    @Test("more matches than maxMatches (default 20): the inject fails and signals none; the bound can be raised")
    func aBroadMatchNeedsMaxMatches() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let children = try (0..<3).map { _ in try sleepers.start() }
        let bounded = try fault("    - {name: p, type: pause-process, match: {name: \(sleepers.name), maxMatches: 2}}")
        do {
            _ = try await driver(bounded).apply(journal: MemoryJournal())
            Issue.record("three matches over a bound of two were paused")
        } catch {
            #expect(error.message.hasPrefix("3 processes match name '\(sleepers.name)' ("), "\(error.message)")
            #expect(error.message.contains("more than maxMatches 2: narrow the match, or set match.maxMatches: 3"), "\(error.message)")
        }
        #expect(children.allSatisfy { sleepers.state($0) == "S" }, "none was signalled")
        let kill = try fault("    - {name: k, type: kill-process, mode: one, match: {name: \(sleepers.name), maxMatches: 2}}")
        _ = try await driver(kill).apply(journal: MemoryJournal())
        #expect(await eventually { children.filter { sleepers.isGone($0) }.count == 1 }, "mode one hits one of three: within the bound")
        let raised = try fault("    - {name: p, type: pause-process, match: {name: \(sleepers.name), maxMatches: 3}}")
        let record = try await driver(raised).apply(journal: MemoryJournal())
        try await driver(raised).revert(record)
        #expect(ProcessMatch.defaultMaxMatches == 20)
    }

    @Test func faultlineNeverHitsItself() throws {
        let me = ProcessTable().read(getpid())!
        let match = ProcessMatch(pid: me.pid)
        #expect(match.select(from: [me], pidFromFile: nil, protected: ProcessTable().protectedPIDs()).isEmpty)
    }
}
