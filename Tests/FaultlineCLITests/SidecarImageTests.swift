import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Faultline's own image (scripts/build-image, from this build's binary) as a sidecar under podman: it shares the app
/// container's network and PID namespaces, keeps its journal on a volume, serves HTTPS with a token; the runtime finds
/// it healthy; a fault submitted to its API is measured from another namespace; after a SIGKILL of the sidecar and a
/// start of the same container, nothing of the fault is left: with the agent and its guard killed at once, the restarted
/// agent reverts from its journal before its API opens.
@Suite(.serialized) struct SidecarImageTests {
    @Test func theImageAsASidecarRevertsAfterASigkill() async throws {
        guard geteuid() == 0 else {
            print("sidecar image test skipped: needs root")
            return
        }
        for tool in ["buildah", "debootstrap", "openssl", "strip", "setcap"] where !Privilege.hasTool(tool) {
            print("sidecar image test skipped: no \(tool) (apt-get install buildah debootstrap openssl binutils libcap2-bin)")
            return
        }
        let net = try await TestNetwork.create()
        guard let runtime = try await ContainerRuntimeTests.up("podman") else {
            await net.remove()
            return
        }
        let tag = "localhost/faultline-sidecar-test:\(getpid())"
        do {
            try await check(net: net, runtime: runtime, tag: tag)
        } catch {
            await remove(runtime: runtime, net: net, tag: tag)
            throw error
        }
        await remove(runtime: runtime, net: net, tag: tag)
    }

    func remove(runtime: String, net: TestNetwork, tag: String) async {
        _ = try? await SubprocessRunner().run([runtime + "/podman", "rm", "--force", "--time", "0", "sidecar", "app"], timeout: .seconds(60), outputLimit: 1 << 20)
        await ContainerRuntimeTests.down(runtime)
        _ = try? await SubprocessRunner().run(["buildah", "rmi", tag], timeout: .seconds(60), outputLimit: 1 << 20)
        await net.remove()
    }

    func check(net: TestNetwork, runtime: String, tag: String) async throws {
        let runner = SubprocessRunner()
        let podman = runtime + "/podman"
        let clock = ContinuousClock()
        // The image from this build's binary, loaded into the test's private store.
        var began = clock.now
        let built = try await runner.run([TestPaths.root.path + "/scripts/build-image", "--binary", TestPaths.faultline, "--tag", tag],
                                         timeout: .seconds(900), outputLimit: 1 << 20)
        guard built.succeeded else { throw TestFailure("scripts/build-image exited \(built.exitCode): \(built.standardError)\(built.standardOutput)") }
        let archive = runtime + "/image.tar"
        try await net.must(["buildah", "push", "--quiet", tag, "docker-archive:\(archive):\(tag)"])
        try await net.must([podman, "load", "--quiet", "--input", archive])
        try? FileManager.default.removeItem(atPath: archive)
        print("sidecar image: built and loaded in \(clock.now - began) (\(built.standardOutput.split(separator: "\n").last ?? ""))")

        // The app: an HTTP server on 8080 in namespace B.
        try await net.must([podman, "run", "-d", "--name", "app", "--network", "ns:/run/netns/\(net.b)",
                            "localhost/faultline-test-base:latest", "sh", "-c", "exec busybox httpd -f -p 8080 -h /etc"])
        func reachable(_ timeout: Double = 0.3) async throws -> Bool {
            try await net.handshakes(from: net.a, to: TestNetwork.addressB, port: 8080, count: 1, timeout: timeout).failed == 0
        }
        var ready = false
        for _ in 0..<100 where !ready {
            ready = try await reachable()
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready, "the app's HTTP server did not answer from namespace A")

        // The sidecar: the image's own entrypoint and command (HTTPS on 0.0.0.0:7465 with /etc/faultline/tls), a
        // token, its state on a volume (a directory here) that outlives the container.
        let tls = runtime + "/tls"
        try FileManager.default.createDirectory(atPath: tls, withIntermediateDirectories: true)
        let pki = try await TestPKI.make(tls, agentNames: "IP:\(TestNetwork.addressB)")
        try FileManager.default.copyItem(atPath: pki.path("agent.pem"), toPath: tls + "/tls.crt")
        try FileManager.default.copyItem(atPath: pki.path("agent.key"), toPath: tls + "/tls.key")
        for (path, mode) in [(tls, 0o755), (tls + "/tls.crt", 0o644), (tls + "/tls.key", 0o644)] { chmod(path, mode_t(mode)) }
        let state = runtime + "/sidecar-state"
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        chown(state, 65532, 65532)
        chmod(state, 0o700)
        let token = "sidecar-\(UInt64.random(in: 0 ... .max))-\(UInt64.random(in: 0 ... .max))-\(UInt64.random(in: 0 ... .max))"
        let tokenFile = runtime + "/token"
        _ = FileManager.default.createFile(atPath: tokenFile, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
        try await net.must([podman, "run", "-d", "--name", "sidecar", "--network", "container:app", "--pid", "container:app",
                            "--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW", "-e", "FAULTLINE_TOKEN=\(token)",
                            "-v", "\(tls):/etc/faultline/tls:ro", "-v", "\(state):/var/lib/faultline", tag])
        func healthy() async throws -> Bool {
            for _ in 0..<60 {
                if try await runner.run([podman, "healthcheck", "run", "sidecar"], timeout: .seconds(30), outputLimit: 1 << 16).succeeded { return true }
                try await Task.sleep(for: .milliseconds(250))
            }
            return false
        }
        /// Records `message` with the sidecar's logs when `ok` is false.
        func expect(_ ok: Bool, _ message: String, sourceLocation: SourceLocation = #_sourceLocation) async {
            guard !ok else { return }
            let logs = (try? await runner.run([podman, "logs", "sidecar"], timeout: .seconds(30), outputLimit: 1 << 20)).map { $0.standardOutput + $0.standardError } ?? ""
            Issue.record("\(message)\nthe sidecar's logs:\n\(logs)", sourceLocation: sourceLocation)
        }
        let healthyAtStart = try await healthy()
        await expect(healthyAtStart, "podman healthcheck run: the sidecar is not healthy")

        // A drop of the app's port, submitted from namespace A to the sidecar's API.
        let scenario = runtime + "/drop.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: sidecar-drop}
            spec:
              maxDuration: 5m
              faults:
                - {name: cut, type: drop, direction: ingress, from: {ports: [8080]}, duration: 4m}
            """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let controller = ["--agent", "https://\(TestNetwork.addressB):7465", "--token-file", tokenFile, "--ca-file", pki.path("ca.pem")]
        let submitted = try await runner.run(["ip", "netns", "exec", net.a, TestPaths.faultline, "submit", scenario] + controller,
                                             timeout: .seconds(60), outputLimit: 1 << 20)
        await expect(submitted.succeeded, "faultline submit exited \(submitted.exitCode): \(submitted.standardError)\(submitted.standardOutput)")
        var cut = false
        for _ in 0..<100 where !cut {
            cut = try await !reachable()
            if !cut { try await Task.sleep(for: .milliseconds(50)) }
        }
        await expect(cut, "the app stayed reachable: the sidecar's drop did not act")
        #expect(try await net.must(["ip", "netns", "exec", net.b, "iptables", "-S"]).standardOutput.contains("FAULTLINE"))

        // SIGKILL of every process of the sidecar at once, as a kubelet's kill of its cgroup does: the agent and its
        // guard (which would otherwise begin the revert) cannot revert. Then the same container is started again.
        let id = try await net.must([podman, "inspect", "--format", "{{.Id}}", "sidecar"]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let members = ProcessTable().all().filter { process in
            ((try? String(contentsOfFile: "/proc/\(process.pid)/cgroup", encoding: .utf8)) ?? "").contains(id)
        }
        #expect(members.contains { $0.arguments.count > 1 && $0.arguments[1] == "guard" }, "no guard in the sidecar: \(members.map(\.commandLine))")
        for process in members { _ = try? ProcessSignaller().send(.kill, to: process.identity) }
        _ = try? await runner.run([podman, "kill", "--signal", "KILL", "sidecar"])
        var exited = false
        for _ in 0..<100 where !exited {
            exited = try await runner.run([podman, "inspect", "--format", "{{.State.Running}}", "sidecar"]).standardOutput.hasPrefix("false")
            if !exited { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(exited, "the sidecar still runs after SIGKILL")
        // Nothing reverted it: the fault outlived its agent, until the agent is back.
        #expect(try await !reachable(), "the app became reachable without the agent")
        began = clock.now
        try await net.must([podman, "start", "sidecar"])
        // Reverted: the app reachable and no Faultline rule or chain left in its namespace.
        var rulesAfter = ""
        var back = false
        while !back, clock.now - began < .seconds(15) {
            rulesAfter = try await net.must(["ip", "netns", "exec", net.b, "iptables", "-S"]).standardOutput
            back = !rulesAfter.contains("FAULTLINE")
            if back { back = try await reachable(0.2) }
            if !back { try await Task.sleep(for: .milliseconds(20)) }
        }
        let took = clock.now - began
        print("sidecar image: from 'podman start' of the SIGKILLed sidecar to the app reachable and no rule left: \(took)")
        await expect(back && took < .seconds(10), "not reverted within 10 s of the restart (\(took)); rules: \(rulesAfter)")
        let healthyAfter = try await healthy()
        await expect(healthyAfter, "the restarted sidecar is not healthy")
        let listed = try await runner.run(["ip", "netns", "exec", net.a, TestPaths.faultline, "list", "--json"] + controller,
                                          timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(listed.succeeded && listed.standardOutput.contains("sidecar-drop"), "the restarted agent does not list the run: \(listed.standardOutput)\(listed.standardError)")
    }
}
