import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// What a run never does to processes: inject after its abort was declared, or hit more than its match allows;
/// and what `plan` shows of a process fault's matches now.
@Suite(.serialized) struct ProcessSafetyTests {
    func write(_ text: String, _ name: String, in sleepers: TestSleepers) throws -> String {
        let file = sleepers.directory.appendingPathComponent(name).path
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    @Test("once a fault could not be injected (the abort), a fault scheduled for the same instant is not injected at all")
    func nothingIsInjectedAfterTheAbort() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let victim = try sleepers.start()
        let file = try write(agentScenario("abort-then-inject", maxDuration: "10s", faults: "    - {name: missing, type: pause-process, start: 500ms, duration: 2s, match: {cmdline: '^no-such-process-\(sleepers.name)$'}}\n    - {name: freeze, type: pause-process, start: 500ms, duration: 2s, match: {name: \(sleepers.name)}}"), "abort.yaml", in: sleepers)
        let out = sleepers.directory.appendingPathComponent("out").path
        let log = sleepers.directory.appendingPathComponent("run.log").path
        let runner = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--report", out,
                                             "--state-dir", sleepers.directory.appendingPathComponent("state").path],
                                            table: ProcessTable(), output: log)
        // Watch the victim the whole run: it must never be stopped, not even for a moment.
        var everStopped = false
        var exit: Int32?
        let started = ContinuousClock.now
        while exit == nil, ContinuousClock.now - started < .seconds(15) {
            if sleepers.state(victim) == "T" { everStopped = true }
            var status: Int32 = 0
            if waitpid(runner.pid, &status, WNOHANG) == runner.pid { exit = (status >> 8) & 0xff }
            try await Task.sleep(for: .milliseconds(2))
        }
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(exit == 1, "\(output)")
        #expect(!everStopped, "the second fault was injected after the abort: \(output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))) as? [String: Any])
        let faults = report["faults"] as? [[String: Any]] ?? []
        #expect(faults.map { $0["state"] as? String } == ["failed", "not-injected"], "\(faults)")
        #expect(!output.contains("[freeze] injected"), "\(output)")
    }

    @Test("plan lists what a process fault matches now, and a match over its bound is a problem")
    func planListsMatches() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let children = try (0..<3).map { _ in try sleepers.start() }
        let file = try write(agentScenario("broad-match", maxDuration: "10s", faults: "    - {name: freeze, type: pause-process, duration: 2s, match: {name: \(sleepers.name), maxMatches: 2}}\n    - {name: one, type: kill-process, mode: one, match: {name: \(sleepers.name), maxMatches: 2}}"), "broad.yaml", in: sleepers)
        let result = try await SubprocessRunner().run([TestPaths.faultline, "plan", file], timeout: .seconds(30), outputLimit: 1 << 20)
        let output = result.standardOutput + result.standardError
        let listed = children.map { "\(sleepers.name)[\($0.pid)]" }.joined(separator: ", ")
        #expect(output.contains("freeze: 3 processes match now: \(listed)"), "\(output)")
        #expect(output.contains("3 processes match name '\(sleepers.name)' now, more than maxMatches 2"), "\(output)")
        #expect(output.components(separatedBy: "more than maxMatches 2").count == 2, "only the pause is over its bound (mode one hits one): \(output)")
        #expect(children.allSatisfy { sleepers.state($0) == "S" }, "plan signals nothing")
    }

    @Test("a disk-fill path that leads through a link to /proc, or that is no directory, is refused before anything is applied (exit 3)")
    func diskFillPathsThatEscapeAreRefused() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let link = sleepers.directory.appendingPathComponent("logs").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/proc/self")
        let plain = sleepers.directory.appendingPathComponent("a-file").path
        try "".write(toFile: plain, atomically: true, encoding: .utf8)
        for (path, says) in [(link, "not through a link to /proc/"), (plain, "must be an existing directory")] {
            let file = try write(agentScenario("fill-escape", maxDuration: "10s", faults: "    - {name: fill, type: disk-fill, path: \(path), size: 1MiB, duration: 1s}"), "fill.yaml", in: sleepers)
            let result = try await SubprocessRunner().run([TestPaths.faultline, "run", file, "--yes", "--state-dir", sleepers.directory.appendingPathComponent("state").path],
                                                          timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(result.exitCode == 3, "\(path): \(result.standardError)")
            #expect(result.standardError.contains(says) && result.standardError.contains("nothing was applied"), "\(result.standardError)")
        }
    }

    @Test("a runner killed (with its guard) before it injected anything does not leave its run 'running': the next recover closes it")
    func aRunKilledBeforeItsFirstInjectIsClosed() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let state = sleepers.directory.appendingPathComponent("state").path
        let file = try write(agentScenario("killed-early", maxDuration: "60s", faults: "    - {name: later, type: pause-process, start: 30s, duration: 1s, match: {name: \(sleepers.name)}}"), "early.yaml", in: sleepers)
        let runner = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--state-dir", state], table: ProcessTable(),
                                            output: sleepers.directory.appendingPathComponent("run.log").path)
        var guards: [ProcessRecord] = []
        for _ in 0..<300 where guards.isEmpty {
            try await Task.sleep(for: .milliseconds(20))
            guards = ProcessTable().all().filter { $0.commandLine.contains(" guard --run ") && $0.commandLine.contains(state) }
        }
        #expect(guards.count == 1)
        for process in guards { _ = try? ProcessSignaller().send(.kill, to: process.identity) }
        _ = try? ProcessSignaller().send(.kill, to: runner)
        _ = await ChildProcess.waitForExit(runner.pid)
        #expect(try Journal(directory: state).runs().first?.state == .running, "the journal still says running")
        let recover = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
        #expect(recover.exitCode == 0, "\(recover.standardError)")
        let run = try #require(try Journal(directory: state).runs().first)
        #expect(run.state == .failed && run.reason == "the runner died; recovered", "\(run)")
    }
}
