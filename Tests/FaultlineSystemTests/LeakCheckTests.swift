import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// Run after the whole suite (`make test` does, with FAULTLINE_LEAK_CHECK=1): nothing the tests made is left.
@Suite(.enabled(if: ProcessInfo.processInfo.environment["FAULTLINE_LEAK_CHECK"] == "1",
                "runs after the whole suite: make test sets FAULTLINE_LEAK_CHECK=1 for it"))
struct LeakCheckTests {
    func output(_ argv: [String]) async throws -> String {
        try await SubprocessRunner().run(argv, timeout: .seconds(30), outputLimit: 16 << 20).standardOutput
    }

    @Test func noNamespacesRulesQdiscsMountsProcessesOrFilesAreLeft() async throws {
        let namespaces = try await output(["ip", "netns", "list"]).split(separator: "\n").filter { $0.hasPrefix("flt-") }
        #expect(namespaces.isEmpty, "namespaces left: \(namespaces)")
        if Privilege.hasTool("iptables-save") {
            for tool in ["iptables-save", "ip6tables-save"] {
                let rules = try await output([tool]).split(separator: "\n").filter { $0.contains("FAULTLINE") || $0.contains("faultline:") }
                #expect(rules.isEmpty, "\(tool) in the root namespace still has: \(rules)")
            }
        }
        let qdiscs = try await output(["tc", "qdisc", "show"]).split(separator: "\n").filter { $0.contains("fa17:") || $0.contains("fa18:") }
        #expect(qdiscs.isEmpty, "Faultline qdiscs in the root namespace: \(qdiscs)")
        let ifbs = try await output(["ip", "-o", "link", "show", "type", "ifb"]).split(separator: "\n").filter { $0.contains(": flt") }
        #expect(ifbs.isEmpty, "Faultline ifb devices (ingress faults) in the root namespace: \(ifbs)")
        let mounts = try String(contentsOfFile: "/proc/mounts", encoding: .utf8).split(separator: "\n")
            .filter { $0.contains("flt-test") || $0.contains("/pins/") || $0.contains("/tmp/flt-rt-") }
        #expect(mounts.isEmpty, "mounts left: \(mounts)")
        let processes = ProcessTable().all().filter { process in
            process.name.hasPrefix("flt-sl-") || process.commandLine.contains("netprobe.py") || process.commandLine.contains("flt-test-chatter")
                || process.commandLine.contains("flt-marker-") || process.commandLine.contains("/tmp/flt-rt-")
                || (process.name == "dnsmasq" && process.commandLine.contains("faultline-fleet-"))
                || (process.arguments.count > 1 && ["hog", "guard", "run", "agent", "delayer"].contains(process.arguments[1]) && process.arguments[0].hasSuffix("faultline"))
        }
        #expect(processes.isEmpty, "processes left: \(processes.map { "\($0.pid) \($0.commandLine)" })")
        let temporary = try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path)
            .filter { name in
                ["flt-test-", "faultline-flt-sl-", "faultline-cli-", "faultline-doctor-", "faultline-prometheus-", "faultline-exporter-"]
                    .contains { name.hasPrefix($0) }
            }
        #expect(temporary.isEmpty, "temporary files left: \(temporary)")
        if Privilege.hasTool("buildah") {
            let images = try await output(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"]).split(separator: "\n").filter { $0.contains("faultline-sidecar-test") }
            #expect(images.isEmpty, "test images left in buildah's store: \(images)")
        }
        let resolvers = ((try? FileManager.default.contentsOfDirectory(atPath: "/etc/netns")) ?? []).filter { $0.hasPrefix("flt-") }
        #expect(resolvers.isEmpty, "/etc/netns entries left (a test DNS server's resolv.conf): \(resolvers)")
    }
}
