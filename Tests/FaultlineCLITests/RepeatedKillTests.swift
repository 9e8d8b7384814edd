import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// `kill-process` with `every`: the run hits the matching processes again at each interval (a crash loop).
@Suite(.serialized) struct RepeatedKillTests {
    @Test func everyRepeatsTheKillUntilTheFaultEnds() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let file = sleepers.directory.appendingPathComponent("loop.yaml").path
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: crash-loop}
            spec:
              maxDuration: 3s
              faults:
                - {name: loop, type: kill-process, every: 400ms, duration: 1300ms, match: {name: \(sleepers.name)}}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let log = sleepers.directory.appendingPathComponent("run.log").path
        var victims = [try sleepers.start()]
        let runner = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--log-format", "json",
                                             "--state-dir", sleepers.directory.appendingPathComponent("state").path],
                                            table: ProcessTable(), output: log)
        // A supervisor that restarts the process: a new one every 100 ms while the run lasts.
        var exit: Int32?
        let clock = ContinuousClock.now
        while exit == nil, ContinuousClock.now - clock < .seconds(10) {
            try await Task.sleep(for: .milliseconds(100))
            victims.append(try sleepers.start())
            var status: Int32 = 0
            if waitpid(runner.pid, &status, WNOHANG) == runner.pid { exit = (status >> 8) & 0xff }
        }
        let events = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
            .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let kills = events.filter { $0["event"] as? String == "inject" && $0["fault"] as? String == "loop" }
        #expect(exit == 0, "\(events.map { $0["msg"] ?? "" })")
        #expect((3...5).contains(kills.count), "kills at +0, +0.4, +0.8 and +1.2 s: \(kills.count)")
        #expect(victims.filter { sleepers.isGone($0) }.count >= 3)
    }
}
