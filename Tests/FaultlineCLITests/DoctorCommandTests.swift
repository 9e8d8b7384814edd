import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// `faultline doctor`: tells the truth about this host, and a missing capability fails a scenario's preflight.
@Suite(.serialized) struct DoctorCommandTests {
    func faultline(_ arguments: [String], prefix: [String] = []) async throws -> CommandResult {
        try await SubprocessRunner().run(prefix + [TestPaths.faultline] + arguments, timeout: .seconds(60), outputLimit: 4 << 20)
    }

    struct Report: Decodable {
        struct Check: Decodable { var type: String; var kind: String; var name: String; var status: String; var fix: String?; var detail: String? }
        var effectiveCapabilities: [String]
        var checks: [Check]
    }

    /// A scenario file in a fresh temporary directory (removed by the caller).
    func scenarioFile(_ name: String, _ text: (String) -> String) throws -> (directory: URL, file: String) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-doctor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent(name).path
        try text(directory.path).write(toFile: file, atomically: true, encoding: .utf8)
        return (directory, file)
    }

    @Test(.enabled(if: Privilege.canUseNamespaces, "needs root to try kernel features in a scratch namespace"))
    func doctorReportsWhatTheKernelReallyHas() async throws {
        let result = try await faultline(["doctor", "--format", "json"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.standardOutput.utf8))
        // Ask the kernel directly, in a namespace of our own.
        let namespace = try await TestNamespace.create()
        let netem = try await namespace.runner.run(["ip", "netns", "exec", namespace.name, "tc", "qdisc", "add", "dev", "eth0", "root", "netem", "delay", "1ms"])
        let tbf = try await namespace.runner.run(["ip", "netns", "exec", namespace.name, "tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", "1mbit", "burst", "32kb", "latency", "50ms"])
        await namespace.remove()
        // The five netem faults say which engine runs here, and why (the userspace one where the kernel has no sch_netem).
        for type in ["latency", "packet-loss", "duplicate", "corrupt", "reorder"] {
            let engine = report.checks.first { $0.type == type && $0.name == "netem or nfqueue engine" }
            #expect(engine?.status == "ok", "\(String(describing: engine))")
            let expected = netem.succeeded ? "netem: the kernel has sch_netem" : "nfqueue: the kernel has no sch_netem ("
            #expect(engine?.detail?.hasPrefix(expected) == true, "\(String(describing: engine?.detail))")
        }
        #expect(report.checks.first { $0.type == "bandwidth" && $0.name == "sch_tbf" }?.status == (tbf.succeeded ? "ok" : "missing"))
        #expect(report.effectiveCapabilities.contains("NET_ADMIN"))
        let leftovers = try await SubprocessRunner().run(["ip", "netns", "list"]).standardOutput
        #expect(!leftovers.contains("flt-doctor-"), "the scratch namespace is removed")
    }

    @Test(.enabled(if: Privilege.isRoot && Privilege.hasTool("capsh"), "needs root and capsh to drop a capability"))
    func withoutNetAdminANetworkScenarioFailsPreflightWithExitThree() async throws {
        let (directory, file) = try scenarioFile("drop.yaml") { _ in """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: needs-net-admin}
            spec:
              maxDuration: 1m
              faults:
                - {name: cut, type: drop, to: {hosts: [10.213.9.9]}}
            """ }
        defer { try? FileManager.default.removeItem(at: directory) }
        let rulesBefore = try await SubprocessRunner().run(["iptables-save"]).standardOutput.filter { !$0.isNumber }
        let namespacesBefore = try await SubprocessRunner().run(["ip", "netns", "list"]).standardOutput
        let result = try await SubprocessRunner().run(["capsh", "--drop=cap_net_admin", "--shell=\(TestPaths.faultline)", "--", "doctor", file],
                                                      timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(result.exitCode == 3, "\(result.standardOutput)\(result.standardError)")
        #expect(result.standardOutput.contains("capability NET_ADMIN"))
        #expect(result.standardOutput.contains("--cap-add NET_ADMIN (capability CAP_NET_ADMIN)"))
        let kernelRows = result.standardOutput.split(separator: "\n").filter { $0.contains(" kernel ") }
        #expect(!kernelRows.isEmpty && kernelRows.allSatisfy { $0.contains("unknown") && $0.contains("not tried") },
                "no kernel feature is blamed for a missing capability")
        #expect(try await SubprocessRunner().run(["iptables-save"]).standardOutput.filter { !$0.isNumber } == rulesBefore)
        #expect(try await SubprocessRunner().run(["ip", "netns", "list"]).standardOutput == namespacesBefore)
    }

    @Test func doctorWithAFileThatIsFineExitsZero() async throws {
        let (directory, file) = try scenarioFile("burn.yaml") { path in """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: burn}
            spec:
              maxDuration: 1m
              faults:
                - {name: burn, type: cpu-stress, load: 10%}
                - {name: fill, type: disk-fill, path: \(path), size: 1MiB}
            """ }
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try await faultline(["doctor", file])
        #expect(result.exitCode == 0, "\(result.standardOutput)")
        #expect(result.standardOutput.contains("nothing missing"))
    }
}
