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

    func directory() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-cli-degraded-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("memory-stress of 100TiB: the allocation fails, so the inject fails and the run aborts (it said 'injected', exit 0, before)")
    func memoryThatCannotBeAllocated() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (exit, output, report) = try await run("    - {name: hog, type: memory-stress, size: 100TiB, duration: 2s}", in: directory)
        #expect(exit == 1, "\(output)")
        #expect(output.contains("the memory could not be allocated"), "\(output)")
        #expect((report["faults"] as? [[String: Any]])?.first?["state"] as? String == "failed")
    }

    @Test("disk-fill of 1TiB on a 16 MiB filesystem: filled what there was, said with the real figure; the fault is degraded and the run inconclusive (exit 5)")
    func aFillSmallerThanAsked() async throws {
        let directory = try directory()
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
}
