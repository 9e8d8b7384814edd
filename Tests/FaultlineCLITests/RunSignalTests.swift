import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `faultline run` stopped by any stop signal: the runner still reverts. The fault freezes only the test's own
/// sleepers; no network, no namespace.
@Suite(.serialized, .enabled(if: Privilege.isRoot && Privilege.hasTool("python3"), "needs root (the runner's preflight and guard) and python3"))
struct RunSignalTests {
    /// A scratch folder with a scenario that freezes `sleepers` for 20 s (maxDuration 30 s).
    struct Setup {
        let directory: String
        let sleepers: TestSleepers
        let sleeper: ProcessIdentity
        var state: String { directory + "/state" }
        var reports: String { directory + "/reports" }
        var scenario: String { directory + "/scenario.yaml" }

        /// Until the sleeper's state is (or, `not`, is no longer) `T`, at most `timeout`; whether it got there.
        func waitUntilFrozen(_ frozen: Bool, timeout: Duration = .seconds(10)) async throws -> Bool {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if (sleepers.state(sleeper) == "T") == frozen { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return false
        }

        /// The run in the journal once it has a final state (5 s at most), else as it is.
        func journalledRun() async throws -> RunEntry? {
            let journal = try Journal(directory: state)
            for _ in 0..<250 {
                if let run = try journal.runs().last, run.state.isFinal { return run }
                try await Task.sleep(for: .milliseconds(20))
            }
            return try journal.runs().last
        }

        func report() -> [String: Any] {
            guard let data = FileManager.default.contents(atPath: reports + "/report.json") else { return [:] }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        }
    }

    /// Builds the setup, runs `body`, and always kills `body`'s processes (registered in `spawned`), the sleepers
    /// and the folder.
    func withSetup(_ body: (Setup, inout [Int32]) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-signals-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let sleepers = try TestSleepers()
        var spawned: [Int32] = []
        defer {
            for pid in spawned.reversed() {
                kill(pid, SIGKILL)
                _ = ChildProcess.reap(pid)
            }
            sleepers.removeAll()
            try? FileManager.default.removeItem(atPath: directory)
        }
        let sleeper = try sleepers.start()
        try agentScenario("signals", faults: pauseFault("freeze", sleepers: sleepers, duration: "20s"))
            .write(toFile: directory + "/scenario.yaml", atomically: true, encoding: .utf8)
        try await body(Setup(directory: directory, sleepers: sleepers, sleeper: sleeper), &spawned)
    }

    @Test("SIGHUP (a dropped SSH session) and SIGQUIT stop a run as SIGTERM does: the runner reverts, writes its report, exits 130",
          arguments: [SIGTERM, SIGHUP, SIGQUIT])
    func everyStopSignalRevertsAndReports(signal: Int32) async throws {
        try await withSetup { setup, spawned in
            let log = setup.directory + "/run.log"
            let runner = try ChildProcess.spawn([TestPaths.faultline, "run", setup.scenario, "--yes", "--state-dir", setup.state,
                                                 "--report", setup.reports], table: ProcessTable(), output: log)
            spawned.append(runner.pid)
            #expect(try await setup.waitUntilFrozen(true), "the fault was never injected: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            kill(runner.pid, signal)
            let exit = await waitForExit(runner.pid)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(exit == 130, "signal \(signal): \(output)")
            // The runner itself reverted before it exited: no guard needed.
            #expect(setup.sleepers.state(setup.sleeper) != "T", "the sleeper is still frozen after the runner exited")
            let name = [SIGTERM: "SIGTERM", SIGHUP: "SIGHUP", SIGQUIT: "SIGQUIT"][signal]!
            #expect(output.contains("\(name): reverting everything, then exiting"), "\(output)")
            let report = setup.report()
            #expect(report["exitCode"] as? Int == 130, "\(report)")
            #expect(report["state"] as? String == "aborted", "\(report)")
            let run = try await setup.journalledRun()
            #expect(run?.state == .aborted, "the runner ended the run, not its guard: \(String(describing: run))")
        }
    }
}
