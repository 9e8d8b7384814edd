import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `faultline run` stopped by any stop signal, or left writing to a pipe nobody reads: the runner (or, if it dies,
/// its guard) still reverts. The fault freezes only the test's own sleepers; no network, no namespace.
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

    /// Runs argv on a pseudo-terminal (120x60) rendered by pyte, presses Ctrl-C once the live view has been drawn
    /// three times, and prints the exit code and the screen left at the end as JSON.
    static let terminal = """
        import json, os, pty, select, sys, time
        import pyte
        argv = sys.argv[1:]
        screen = pyte.Screen(120, 60)
        stream = pyte.ByteStream(screen)
        pid, fd = pty.fork()
        if pid == 0:
            os.execv(argv[0], argv)
        raw, sent, start = b"", False, time.time()
        while True:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                raw += data
                stream.feed(data)
            if not sent and raw.count(b" elapsed ") >= 3:
                os.write(fd, b"\\x03")
                sent = True
            if time.time() - start > 60:
                os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exit": os.waitstatus_to_exitcode(status), "sent": sent, "screen": [line.rstrip() for line in screen.display]}))

        """

    static let hasTerminalEmulator = TestPython.canImport("pyte")

    @Test(.enabled(if: hasTerminalEmulator, "needs pyte in .build-tools/venv (scripts/test-python installs it)"))
    func ctrlCAtATerminalLeavesNoFrameBehind() async throws {
        try await withSetup { setup, _ in
            let script = setup.directory + "/terminal.py"
            try Self.terminal.write(toFile: script, atomically: true, encoding: .utf8)
            let result = try await SubprocessRunner().run([TestPython.path, script, TestPaths.faultline, "run", setup.scenario, "--yes",
                                                           "--state-dir", setup.state, "--report", setup.reports],
                                                          timeout: .seconds(90), outputLimit: 4 << 20)
            struct Outcome: Decodable { var exit: Int; var sent: Bool; var screen: [String] }
            let outcome = try JSONDecoder().decode(Outcome.self, from: Data(result.standardOutput.utf8))
            let screen = outcome.screen.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(outcome.sent, "the live view was never drawn: \(screen) \(result.standardError)")
            #expect(outcome.exit == 130, "\(screen)")
            #expect(setup.sleepers.state(setup.sleeper) != "T", "the sleeper is still frozen")
            // The frame is gone (erased from the first column, wherever the echoed ^C left the cursor); the summary stays.
            #expect(!screen.contains(" elapsed "), "a live-view frame was left on the terminal:\n\(screen)")
            #expect(!outcome.screen.contains { $0.hasPrefix("^C") && $0.count > 2 }, "the echoed ^C shares a line with other text:\n\(screen)")
            // Only whole frame lines begin with the rule, like the summary's "── run ID · NAME: interrupted (exit 130) ──".
            let stray = outcome.screen.filter { $0.hasPrefix("─") && !$0.hasSuffix("──") }
            #expect(stray.isEmpty, "a piece of the live view's frame is left before a line: \(stray)")
            #expect(screen.contains("interrupted") || screen.contains("aborted"), "\(screen)")
        }
    }

    /// Runs faultline under a python3 parent that reads its stdout and stderr through one pipe, then closes the
    /// pipe's read end once `go` exists (as `faultline run S 2>&1 | tee log` when tee dies first).
    static let closingReader = """
        import os, subprocess, sys, time
        go, argv = sys.argv[1], sys.argv[2:]
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        print(f"pid {child.pid}", flush=True)
        print("first line: " + child.stdout.readline().decode(errors="replace").rstrip(), flush=True)
        while not os.path.exists(go):
            time.sleep(0.02)
        child.stdout.close()
        print("closed", flush=True)
        print(f"exit {child.wait()}", flush=True)

        """

    @Test("with its output pipe closed (tee gone), an interrupted runner still reverts and ends the run; killed, its guard still reverts",
          arguments: [SIGINT, SIGKILL])
    func aClosedOutputPipeStopsNoRevert(signal: Int32) async throws {
        try await withSetup { setup, spawned in
            let script = setup.directory + "/closing-reader.py"
            try Self.closingReader.write(toFile: script, atomically: true, encoding: .utf8)
            let go = setup.directory + "/go"
            let log = setup.directory + "/reader.log"
            let reader = try ChildProcess.spawn(["python3", script, go, TestPaths.faultline, "run", setup.scenario, "--yes",
                                                 "--state-dir", setup.state, "--report", setup.reports], table: ProcessTable(), output: log)
            spawned.append(reader.pid)
            func readerLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
            #expect(try await setup.waitUntilFrozen(true), "the fault was never injected: \(readerLog())")
            let pidLine = try #require(readerLog().split(separator: "\n").first { $0.hasPrefix("pid ") }, "\(readerLog())")
            let runner = try #require(Int32(pidLine.dropFirst(4)))
            spawned.insert(runner, at: 0)
            _ = FileManager.default.createFile(atPath: go, contents: nil)
            for _ in 0..<250 where !readerLog().contains("closed\n") { try await Task.sleep(for: .milliseconds(20)) }
            #expect(readerLog().contains("closed\n"), "\(readerLog())")
            kill(runner, signal)
            let resumed = try await setup.waitUntilFrozen(false, timeout: .seconds(5))
            #expect(resumed, "the sleeper is still frozen 5 s after the signal: nothing reverted it")
            if await waitForExit(reader.pid) == 128 + SIGKILL { kill(runner, SIGKILL) }
            let run = try #require(try await setup.journalledRun(), "no run in the journal")
            #expect(run.state.isFinal, "the run is still '\(run.state.rawValue)'")
            let guardLog = (try? String(contentsOfFile: "\(setup.state)/runs/\(run.id)/guard.log", encoding: .utf8)) ?? ""
            if signal == SIGKILL {
                #expect(readerLog().contains("exit -9\n"), "\(readerLog())")
                #expect(run.state == .failed && run.reason?.contains("the guard reverted 1 of 1 faults") == true, "\(run)")
                #expect(guardLog.contains("reverted by the guard"), "the guard logs into its own file: \(guardLog)")
            } else {
                #expect(readerLog().contains("exit 130\n"), "the runner finished its own way out: \(readerLog())")
                #expect(run.state == .aborted, "\(run)")
                #expect(setup.report()["exitCode"] as? Int == 130, "\(setup.report())")
            }
        }
    }
}
