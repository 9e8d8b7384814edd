import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What a driver knows has failed is never hidden: a memory hog that cannot allocate fails its inject, and a fill
/// smaller than asked is said with the real figure and makes the run inconclusive (exit 5), not held.
@Suite(.serialized, .enabled(if: Privilege.isRoot, "needs root: mounts a small tmpfs"))
struct DegradedFaultTests {
    func run(_ faults: String, in directory: String) async throws -> (exit: Int32, output: String, report: [String: Any]) {
        let file = directory + "/degraded.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: degraded}
            spec:
              maxDuration: 20s
              faults:
            \(faults)
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await SubprocessRunner().run([TestPaths.faultline, "run", file, "--yes", "--state-dir", directory + "/state", "--report", directory + "/out"],
                                                      timeout: .seconds(60), outputLimit: 1 << 20)
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/out/report.json"))
        return (result.exitCode, result.standardError, try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]))
    }

    @Test("memory-stress of 100TiB: the allocation fails, so the inject fails and the run aborts (it said 'injected', exit 0, before)")
    func memoryThatCannotBeAllocated() async throws {
        let directory = try makeTestDirectory("degraded")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (exit, output, report) = try await run("    - {name: hog, type: memory-stress, size: 100TiB, duration: 2s}", in: directory)
        #expect(exit == 1, "\(output)")
        #expect(output.contains("the memory could not be allocated"), "\(output)")
        #expect((report["faults"] as? [[String: Any]])?.first?["state"] as? String == "failed")
    }

    @Test("disk-fill of 1TiB on a 16 MiB filesystem: filled what there was, said with the real figure; the fault is degraded and the run inconclusive (exit 5)")
    func aFillSmallerThanAsked() async throws {
        let directory = try makeTestDirectory("degraded")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mountPoint = directory + "/small"
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mounted = try await SubprocessRunner().run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint], timeout: .seconds(10), outputLimit: 1 << 16)
        try #require(mounted.succeeded, "\(mounted.standardError)")
        defer { _ = umount2(mountPoint, Int32(MNT_DETACH)) }
        let (exit, output, report) = try await run("    - {name: fill, type: disk-fill, path: \(mountPoint), size: 1TiB, duration: 1s}", in: directory)
        #expect(exit == 5, "\(output)")
        #expect(output.contains("filled ") && output.contains("of the 1TiB asked"), "\(output)")
        #expect(report["state"] as? String == "inconclusive" && report["exitCode"] as? Int == 5, "\(report["state"] ?? "")")
        let fault = (report["faults"] as? [[String: Any]])?.first ?? [:]
        #expect(fault["state"] as? String == "degraded", "\(fault)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: mountPoint).isEmpty, "the fill file is removed")
    }

    @Test("a load probe with no result during the method (every request outlasts it) makes the run inconclusive, exit 5, not held")
    func aProbeSilentDuringTheMethod() async throws {
        let directory = try makeTestDirectory("degraded")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        // A service that answers every request after 1.5 s.
        let port = try freeLoopbackPort()
        try """
            import http.server, sys, time
            class Handler(http.server.BaseHTTPRequestHandler):
                def log_message(self, *args):
                    pass
                def do_GET(self):
                    time.sleep(1.5)
                    self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
            server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
            server.daemon_threads = True
            server.serve_forever()
            """.write(toFile: directory + "/slow.py", atomically: true, encoding: .utf8)
        let server = try ChildProcess.spawn(["/usr/bin/python3", directory + "/slow.py", "\(port)"], table: ProcessTable())
        defer {
            _ = try? ProcessSignaller().send(.kill, to: server)
            _ = ChildProcess.reap(server.pid)
        }
        for _ in 0..<100 where (try? await SubprocessRunner().run(["curl", "-s", "-o", "/dev/null", "--max-time", "0.1", "http://127.0.0.1:\(port)/"],
                                                                   timeout: .seconds(2), outputLimit: 1024))?.exitCode == 7 {
            try await Task.sleep(for: .milliseconds(50))
        }
        let file = directory + "/silent.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: silent-probe}
            spec:
              maxDuration: 20s
              steadyState:
                probes:
                  - name: slow-service
                    http: {url: "http://127.0.0.1:\(port)/", timeout: 5s}
                    rate: 5
              faults:
                - {name: freeze, type: pause-process, duration: 500ms, match: {name: \(sleepers.name)}}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        let result = try await SubprocessRunner().run([TestPaths.faultline, "run", file, "--yes", "--state-dir", directory + "/state"],
                                                      timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(result.exitCode == 5, "\(result.standardError)")
        #expect(result.standardError.contains("probe 'slow-service' has no result during the method"), "\(result.standardError)")
    }

    @Test("a state directory without room for the 4 MiB journal reserve: doctor and run say so (it was skipped in silence)")
    func aMissingJournalReserveIsSaid() async throws {
        let directory = try makeTestDirectory("reserve")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/tiny"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let mounted = try await SubprocessRunner().run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", state], timeout: .seconds(10), outputLimit: 1 << 16)
        try #require(mounted.succeeded, "\(mounted.standardError)")
        defer { _ = umount2(state, Int32(MNT_DETACH)) }
        let doctor = try await SubprocessRunner().run([TestPaths.faultline, "doctor", "--state-dir", state], timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(doctor.standardOutput.contains("warning: the journal in \(state) has no 4 MiB reserve"), "\(doctor.standardOutput)")
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        _ = try sleepers.start()
        let file = directory + "/short.yaml"
        try agentScenario("short", maxDuration: "10s", faults: "    - {name: freeze, type: pause-process, duration: 200ms, match: {name: \(sleepers.name)}}").write(toFile: file, atomically: true, encoding: .utf8)
        let run = try await SubprocessRunner().run([TestPaths.faultline, "run", file, "--yes", "--state-dir", state], timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(run.exitCode == 0, "\(run.standardError)")
        #expect(run.standardError.contains("no 4 MiB journal reserve in \(state)"), "\(run.standardError)")
    }
}
