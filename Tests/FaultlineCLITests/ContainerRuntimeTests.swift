@testable import FaultlineAgent
import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Container targets against a real runtime: podman on a private store (scripts/test-runtime), an app container in a
/// namespace the test made, and `faultline run` naming it only by `target: {container: app}`.
@Suite(.serialized) struct ContainerRuntimeTests {
    /// A private runtime from scripts/test-runtime in a short directory (its sockets live there); nil, with the
    /// reason printed, where it cannot run.
    static func up(_ runtime: String, _ arguments: [String] = []) async throws -> String? {
        let directory = "/tmp/flt-rt-\(String(UInt32.random(in: 0x1000_0000 ... 0xffff_ffff), radix: 16))"
        let result = try await SubprocessRunner().run([TestPaths.root.path + "/scripts/test-runtime", "\(runtime)-up", directory] + arguments,
                                                      timeout: .seconds(600), outputLimit: 1 << 20)
        if result.exitCode == 3 {
            print("container runtime test skipped: \(runtime): \(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))")
            return nil
        }
        guard result.succeeded else {
            await down(directory)
            throw TestFailure("test-runtime \(runtime)-up exited \(result.exitCode): \(result.standardError)\(result.standardOutput)")
        }
        return directory
    }

    static func down(_ directory: String) async {
        _ = try? await SubprocessRunner().run([TestPaths.root.path + "/scripts/test-runtime", "down", directory], timeout: .seconds(120), outputLimit: 1 << 20)
    }

    /// Every fault family but kill, at once, in one container: each acts inside it, measured from outside, and
    /// nothing is left after; then a kill ends the container's main process, and a container that is not there
    /// stops a run before anything is applied.
    @Test func podmanContainerTarget() async throws {
        guard geteuid() == 0 else {
            print("container runtime test skipped: needs root")
            return
        }
        let net = try await TestNetwork.create()
        guard let runtime = try await Self.up("podman") else {
            await net.remove()
            return
        }
        do {
            try await check(net: net, runtime: runtime)
        } catch {
            await Self.down(runtime)
            await net.remove()
            throw error
        }
        await Self.down(runtime)
        await net.remove()
    }

    func check(net: TestNetwork, runtime: String) async throws {
        let runner = SubprocessRunner()
        let podman = runtime + "/podman"
        let marker = "flt-marker-\(String(UInt32.random(in: 0x1000_0000 ... 0xffff_ffff), radix: 16))"
        // The app: an HTTP server on 8080 in namespace B, then a marked process as the container's main process.
        let started = try await net.must([podman, "run", "-d", "--name", "app", "--network", "ns:/run/netns/\(net.b)",
                                          "--tmpfs", "/fill:size=64m", "localhost/faultline-test-base:latest", "sh", "-c",
                                          "busybox httpd -p 8080 -h /etc && exec python3 -c 'import time; time.sleep(1e6)' \(marker)"])
        #expect(!started.standardOutput.isEmpty)
        func markerProcess() -> ProcessRecord? {
            ProcessTable().all().first { $0.arguments.last == marker && $0.arguments.first?.hasPrefix("python3") == true }
        }
        var app: ProcessRecord?
        for _ in 0..<100 where app == nil {
            app = markerProcess()
            if app == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let main = try #require(app, "the container's marked process did not start")
        #expect(main.namespacePID == 1, "the marked process is the container's pid 1 (exec): \(String(describing: main.namespacePID))")
        var ready = false
        for _ in 0..<100 where !ready {
            ready = try await net.handshakes(from: net.a, to: TestNetwork.addressB, port: 8080, count: 1, timeout: 0.3).failed == 0
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(ready, "the container's HTTP server did not answer from namespace A")

        let state = runtime + "/state"
        let scenario = runtime + "/container.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: container-target}
            spec:
              maxDuration: 5s
              target: {container: app}
              faults:
                - {name: cut, type: drop, direction: ingress, from: {ports: [8080]}, duration: 4s}
                - {name: freeze, type: pause-process, match: {cmdline: "\(marker)"}, duration: 4s}
                - {name: fill, type: disk-fill, path: /fill, size: 16MiB, duration: 4s}
                - {name: burn, type: cpu-stress, workers: 1, load: 20%, duration: 4s}
            """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let socket = ["--runtime-socket", runtime + "/podman.sock", "--state-dir", state]

        // The plan names the container and what it was found to be.
        let plan = try await runner.run([TestPaths.faultline, "plan", scenario] + socket)
        #expect(plan.succeeded, "\(plan.standardError)")
        #expect(plan.standardOutput.contains("app → podman container "), "\(plan.standardOutput)")
        #expect(plan.standardOutput.contains("→ pid \(main.pid) → network namespace /proc/\(main.pid)/ns/net"), "\(plan.standardOutput)")
        #expect(plan.standardOutput.contains("python3[\(main.pid), 1 in its container]"), "\(plan.standardOutput)")

        let log = runtime + "/run.log"
        let clock = ContinuousClock()
        let began = clock.now
        let run = try ChildProcess.spawn([TestPaths.faultline, "run", scenario, "--yes", "--report", runtime + "/report"] + socket,
                                         table: ProcessTable(), output: log)
        // Wait for the pause: every fault is injected at 0s.
        var paused = false
        for _ in 0..<60 where !paused {
            paused = ProcessTable().read(main.pid).map(\.isStopped) == true
            if !paused { try await Task.sleep(for: .milliseconds(50)) }
        }
        try await Task.sleep(for: .milliseconds(300))
        #expect(paused, "the container's process was not paused")
        // The drop is in the container's namespace (B), and not in this test's.
        let during = try await net.handshakes(from: net.a, to: TestNetwork.addressB, port: 8080, count: 3, timeout: 0.3, gap: 0)
        #expect(during.failed == 3, "handshakes to the container went through during the drop: \(during.summary)")
        let chains = try await net.must(["ip", "netns", "exec", net.b, "iptables", "-S"]).standardOutput
        #expect(chains.contains("-N FAULTLINE-"), "no Faultline chain in the container's namespace")
        let hostChains = try await runner.run(["iptables", "-S"]).standardOutput
        #expect(!hostChains.contains("FAULTLINE-"), "a Faultline chain in the machine's own namespace")
        // The fill is on the container's /fill, not on this host's.
        let usage = try Filesystem.usage(of: "/proc/\(main.pid)/root/fill")
        #expect(usage.used >= 16 << 20, "the container's /fill holds \(usage.used) bytes")
        #expect(!FileManager.default.fileExists(atPath: "/fill"))
        // The hog is in the container's cgroups.
        let hog = ProcessTable().all().first { $0.arguments.count > 2 && $0.arguments[1] == "hog" && $0.arguments.contains("--cgroup") && $0.arguments.contains(where: { $0.contains("--duration") }) }
        let hogCgroup = hog.flatMap { try? String(contentsOfFile: "/proc/\($0.pid)/cgroup", encoding: .utf8) }
        let appCgroup = try String(contentsOfFile: "/proc/\(main.pid)/cgroup", encoding: .utf8)
        let memory: (String?) -> Substring? = { text in text?.split(separator: "\n").first { $0.contains(":memory:") || $0.hasPrefix("0::") } }
        #expect(hog != nil, "no stress process with --cgroup running")
        #expect(memory(hogCgroup) == memory(appCgroup), "the stress process is in \(String(describing: memory(hogCgroup))), the container in \(String(describing: memory(appCgroup)))")

        let exit = await ChildProcess.waitForExit(run.pid)
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(exit == 0, "faultline run exited \(exit): \(output)")
        #expect(clock.now - began < .seconds(30))
        // All reverted: reachable, running, empty, no hog, no chain.
        let after = try await net.handshakes(from: net.a, to: TestNetwork.addressB, port: 8080, count: 3, timeout: 0.5, gap: 0)
        #expect(after.failed == 0, "the container is not reachable after the run: \(after.summary)")
        #expect(ProcessTable().read(main.pid).map(\.isStopped) == false, "the container's process is still paused")
        #expect(try Filesystem.usage(of: "/proc/\(main.pid)/root/fill").used < 1 << 20, "the fill is still in the container")
        #expect(!(try await net.must(["ip", "netns", "exec", net.b, "iptables", "-S"]).standardOutput.contains("FAULTLINE")))
        #expect(!ProcessTable().all().contains { $0.arguments.count > 1 && $0.arguments[1] == "hog" && $0.arguments.contains("--cgroup") })

        // A kill hits the container's own main process (pid 1 inside it): the container stops.
        let kill = runtime + "/kill.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: container-kill}
            spec:
              maxDuration: 2s
              target: {container: app}
              faults:
                - {name: end, type: kill-process, match: {pid: 1}}
            """.write(toFile: kill, atomically: true, encoding: .utf8)
        let killed = try await runner.run([TestPaths.faultline, "run", kill, "--yes"] + socket, timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(killed.succeeded, "\(killed.standardError)")
        var gone = false
        for _ in 0..<100 where !gone {
            gone = ProcessTable().read(main.pid).map { $0.startTime != main.startTime || $0.state == "Z" } ?? true
            if !gone { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(gone, "the container's main process survived the kill")

        // Now it is not running: a run refuses before anything is applied, and says why.
        var stopped = false
        for _ in 0..<100 where !stopped {
            stopped = try await runner.run([podman, "inspect", "--format", "{{.State.Running}}", "app"]).standardOutput.hasPrefix("false")
            if !stopped { try await Task.sleep(for: .milliseconds(100)) }
        }
        let refused = try await runner.run([TestPaths.faultline, "run", scenario, "--yes"] + socket, timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(refused.exitCode == 3, "\(refused.standardError)")
        #expect(refused.standardError.contains("container app was not found: container 'app' is not running"), "\(refused.standardError)")

        // Started again, then restarted during a drop: the report says so, and the revert still goes through the
        // network namespace held since the start (here the same namespace B, which the container joins again).
        try await net.must([podman, "start", "app"])
        var up = false
        for _ in 0..<100 where !up {
            up = try await net.handshakes(from: net.a, to: TestNetwork.addressB, port: 8080, count: 1, timeout: 0.3).failed == 0
            if !up { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(up, "the started container does not serve")
        let restart = runtime + "/restart.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: container-restart}
            spec:
              maxDuration: 8s
              target: {container: app}
              faults:
                - {name: cut, type: drop, direction: ingress, from: {ports: [8080]}, duration: 6s}
            """.write(toFile: restart, atomically: true, encoding: .utf8)
        let restartLog = runtime + "/restart.log"
        let restartRun = try ChildProcess.spawn([TestPaths.faultline, "run", restart, "--yes", "--report", runtime + "/restart-report"] + socket,
                                                table: ProcessTable(), output: restartLog)
        var dropped = false
        for _ in 0..<100 where !dropped {
            dropped = try await net.handshakes(from: net.a, to: TestNetwork.addressB, port: 8080, count: 1, timeout: 0.2).failed == 1
            if !dropped { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(dropped, "the drop never acted")
        try await net.must([podman, "restart", "--time", "0", "app"])
        let restartExit = await ChildProcess.waitForExit(restartRun.pid)
        #expect(restartExit == 0, "\((try? String(contentsOfFile: restartLog, encoding: .utf8)) ?? "")")
        let report = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: runtime + "/restart-report/report.json"))) as? [String: Any]
        let faults = report?["faults"] as? [[String: Any]] ?? []
        #expect(faults.first?["state"] as? String == "reverted", "\(faults)")
        #expect((faults.first?["note"] as? String)?.contains("was restarted or stopped during the fault") == true, "\(faults)")
        #expect(!(try await net.must(["ip", "netns", "exec", net.b, "iptables", "-S"]).standardOutput.contains("FAULTLINE")), "the drop is left in the namespace")
        let served = try await net.handshakes(from: net.a, to: TestNetwork.addressB, port: 8080, count: 3, timeout: 1, gap: 0.2)
        #expect(served.failed == 0, "the restarted container is not reachable after the run: \(served.summary)")
    }

    /// docker (dockerd in a namespace of the test's) and containerd alone (ctr, namespace k8s.io): the container is
    /// found by name (docker) or id (containerd) through the socket, and a pause hits its process and is reverted.
    @Test(arguments: ["docker", "containerd"])
    func otherRuntimesFindTheContainer(_ kind: String) async throws {
        guard geteuid() == 0 else {
            print("container runtime test skipped: needs root")
            return
        }
        let net = try await TestNetwork.create()
        let arguments = kind == "docker" ? [net.b, "10.213.77.1/24"] : []
        guard let runtime = try await Self.up(kind, arguments) else {
            await net.remove()
            return
        }
        do {
            try await pause(kind, net: net, runtime: runtime)
        } catch {
            await Self.down(runtime)
            await net.remove()
            throw error
        }
        await Self.down(runtime)
        await net.remove()
    }

    /// A node whose kubelet runs pods through dockerd (cri-dockerd): sandboxes and containers labelled as
    /// cri-dockerd labels them; a pod target through the Docker API pauses the named container of each pod hit.
    @Test func podsThroughTheDockerAPI() async throws {
        guard geteuid() == 0 else {
            print("container runtime test skipped: needs root")
            return
        }
        let net = try await TestNetwork.create()
        guard let runtime = try await Self.up("docker", [net.b, "10.213.78.1/24"]) else {
            await net.remove()
            return
        }
        do {
            try await dockerPods(runtime: runtime)
        } catch {
            await Self.down(runtime)
            await net.remove()
            throw error
        }
        await Self.down(runtime)
        await net.remove()
    }

    func dockerPods(runtime: String) async throws {
        let runner = SubprocessRunner()
        let tag = String(UInt32.random(in: 0x1000_0000 ... 0xffff_ffff), radix: 16)
        let pods = [("shop", "checkout-a", "checkout"), ("shop", "checkout-b", "checkout"), ("shop", "cart-a", "cart")]
        var web: [String: ProcessRecord] = [:]
        for (index, (namespace, pod, app)) in pods.enumerated() {
            let common = ["io.kubernetes.pod.name=\(pod)", "io.kubernetes.pod.namespace=\(namespace)", "io.kubernetes.pod.uid=uid-\(tag)-\(index)"]
            for (kind, extra) in [("podsandbox", ["app=\(app)"]), ("container", ["io.kubernetes.container.name=web"])] {
                let marker = "flt-marker-\(kind)-\(tag)-\(index)"
                let labels = (common + extra + ["io.kubernetes.docker.type=\(kind)"]).flatMap { ["--label", $0] }
                let started = try await runner.run([runtime + "/docker", "run", "-d", "--network", "none"] + labels
                                                   + ["localhost/faultline-test-base:latest", "python3", "-c", "import time; time.sleep(1e6)", marker],
                                                   timeout: .seconds(60), outputLimit: 1 << 20)
                guard started.succeeded else { throw TestFailure("docker run: \(started.standardError)") }
            }
        }
        for (index, (_, pod, _)) in pods.enumerated() {
            var found: ProcessRecord?
            for _ in 0..<100 where found == nil {
                found = ProcessTable().all().first { $0.arguments.last == "flt-marker-container-\(tag)-\(index)" }
                if found == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            web[pod] = try #require(found, "pod \(pod)'s web container did not start")
        }
        let scenario = runtime + "/docker-pods.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: docker-pods}
            spec:
              maxDuration: 3s
              faults:
                - name: freeze
                  type: pause-process
                  duration: 2s
                  target: {pod: {namespace: shop, labels: {app: checkout}}, container: web, mode: all}
                  match: {cmdline: "flt-marker-container-"}
            """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let options = ["--runtime-socket", runtime + "/docker.sock", "--state-dir", runtime + "/state"]
        let plan = try await runner.run([TestPaths.faultline, "plan", scenario] + options)
        #expect(plan.succeeded, "\(plan.standardError)\(plan.standardOutput)")
        #expect(plan.standardOutput.contains("pod shop/checkout-a → ") && plan.standardOutput.contains("pod shop/checkout-b → "), "\(plan.standardOutput)")
        #expect(!plan.standardOutput.contains("cart-a"), "\(plan.standardOutput)")
        let log = runtime + "/docker-pods.log"
        let run = try ChildProcess.spawn([TestPaths.faultline, "run", scenario, "--yes"] + options, table: ProcessTable(), output: log)
        var paused: [String] = []
        for _ in 0..<60 where paused.count < 2 {
            paused = web.filter { ProcessTable().read($0.value.pid).map(\.isStopped) == true }.keys.sorted()
            if paused.count < 2 { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(paused == ["checkout-a", "checkout-b"], "paused \(paused)")
        let exit = await ChildProcess.waitForExit(run.pid)
        #expect(exit == 0, "faultline run exited \(exit): \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        #expect(web.values.allSatisfy { ProcessTable().read($0.pid).map(\.isStopped) == false }, "a web process is still paused")
        // No pod of that label: nothing applied, exit 3, and where it looked.
        let missing = runtime + "/docker-missing.yaml"
        try String(contentsOfFile: scenario, encoding: .utf8).replacingOccurrences(of: "app: checkout", with: "app: nowhere")
            .write(toFile: missing, atomically: true, encoding: .utf8)
        let refused = try await runner.run([TestPaths.faultline, "run", missing, "--yes"] + options, timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(refused.exitCode == 3 && refused.standardError.contains("on this node (the Docker API at \(runtime)/docker.sock)"), "\(refused.standardError)")
    }

    func pause(_ kind: String, net: TestNetwork, runtime: String) async throws {
        let runner = SubprocessRunner()
        let marker = "flt-marker-\(String(UInt32.random(in: 0x1000_0000 ... 0xffff_ffff), radix: 16))"
        let command = ["python3", "-c", "import time; time.sleep(1e6)", marker]
        let target: String
        let socket: String
        if kind == "docker" {
            try await net.must([runtime + "/docker", "run", "-d", "--name", "web", "--network", "none", "localhost/faultline-test-base:latest"] + command)
            target = "{container: web, runtime: docker}"
            socket = runtime + "/docker.sock"
        } else {
            try await net.must([runtime + "/ctr", "-n", "k8s.io", "run", "-d", "--with-ns", "network:/run/netns/\(net.b)",
                                "--label", "io.kubernetes.container.name=web", "localhost/faultline-test-base:latest", "web-0123"] + command)
            target = "{container: web-0123, namespace: k8s.io}"
            socket = runtime + "/containerd.sock"
        }
        var found: ProcessRecord?
        for _ in 0..<100 where found == nil {
            found = ProcessTable().all().first { $0.arguments.last == marker }
            if found == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let main = try #require(found, "the \(kind) container's process did not start")
        let scenario = runtime + "/pause.yaml"
        try """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: \(kind)-pause}
            spec:
              maxDuration: 3s
              target: \(target)
              faults:
                - {name: freeze, type: pause-process, match: {cmdline: "\(marker)"}, duration: 2s}
            """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let options = ["--runtime-socket", socket, "--state-dir", runtime + "/state"]
        let plan = try await runner.run([TestPaths.faultline, "plan", scenario] + options)
        #expect(plan.succeeded, "\(plan.standardError)\(plan.standardOutput)")
        #expect(plan.standardOutput.contains(" → \(kind) container ") && plan.standardOutput.contains("→ pid \(main.pid) →"), "\(plan.standardOutput)")
        let run = try ChildProcess.spawn([TestPaths.faultline, "run", scenario, "--yes"] + options, table: ProcessTable(), output: runtime + "/run.log")
        var paused = false
        for _ in 0..<60 where !paused {
            paused = ProcessTable().read(main.pid).map(\.isStopped) == true
            if !paused { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(paused, "the \(kind) container's process was not paused")
        let exit = await ChildProcess.waitForExit(run.pid)
        #expect(exit == 0, "faultline run exited \(exit): \((try? String(contentsOfFile: runtime + "/run.log", encoding: .utf8)) ?? "")")
        #expect(ProcessTable().read(main.pid).map(\.isStopped) == false, "the \(kind) container's process is still paused")
    }

    /// Pods as the kubelet leaves them in containerd (namespace k8s.io, its labels on sandboxes and containers):
    /// a label target with `mode: all` pauses the named container of every matching pod (one fault per pod), with
    /// `mode: one` only one of them, and a pod of another namespace or label never.
    @Test func podsAreFoundByTheKubeletsLabels() async throws {
        guard geteuid() == 0 else {
            print("container runtime test skipped: needs root")
            return
        }
        let net = try await TestNetwork.create()
        guard let runtime = try await Self.up("containerd") else {
            await net.remove()
            return
        }
        do {
            try await pods(net: net, runtime: runtime)
        } catch {
            await Self.down(runtime)
            await net.remove()
            throw error
        }
        await Self.down(runtime)
        await net.remove()
    }

    /// Every run's events kept in an agent's state directory, for a failure's message (where a run's time went).
    static func events(in state: String) -> String {
        let runs = (try? FileManager.default.contentsOfDirectory(atPath: state + "/runs")) ?? []
        return runs.sorted().map { run in
            "\(run):\n" + ((try? String(contentsOfFile: state + "/runs/\(run)/events.jsonl", encoding: .utf8)) ?? "(no events)")
        }.joined(separator: "\n")
    }

    func pods(net: TestNetwork, runtime: String) async throws {
        let runner = SubprocessRunner()
        let tag = String(UInt32.random(in: 0x1000_0000 ... 0xffff_ffff), radix: 16)
        // Two pods of app=checkout in shop, one of app=checkout in another namespace: a sandbox and a `web` each.
        let pods = [("shop", "checkout-a", "checkout"), ("shop", "checkout-b", "checkout"), ("other", "checkout-c", "checkout")]
        var web: [String: ProcessRecord] = [:]
        for (index, (namespace, pod, app)) in pods.enumerated() {
            let uid = "uid-\(tag)-\(index)"
            let common = ["io.kubernetes.pod.name=\(pod)", "io.kubernetes.pod.namespace=\(namespace)", "io.kubernetes.pod.uid=\(uid)"]
            for (kind, id, extra) in [("sandbox", "sb-\(tag)-\(index)", ["app=\(app)"]), ("container", "web-\(tag)-\(index)", ["io.kubernetes.container.name=web"])] {
                let labels = (common + extra + ["io.cri-containerd.kind=\(kind)"]).flatMap { ["--label", $0] }
                try await net.must([runtime + "/ctr", "-n", "k8s.io", "run", "-d", "--with-ns", "network:/run/netns/\(net.b)"] + labels
                                   + ["localhost/faultline-test-base:latest", id, "python3", "-c", "import time; time.sleep(1e6)", "flt-marker-\(id)"])
            }
        }
        for (index, (_, pod, _)) in pods.enumerated() {
            var found: ProcessRecord?
            for _ in 0..<100 where found == nil {
                found = ProcessTable().all().first { $0.arguments.last == "flt-marker-web-\(tag)-\(index)" }
                if found == nil { try await Task.sleep(for: .milliseconds(50)) }
            }
            web[pod] = try #require(found, "pod \(pod)'s web container did not start")
        }
        let options = ["--runtime-socket", runtime + "/containerd.sock", "--state-dir", runtime + "/state"]
        func scenario(_ mode: String) throws -> String {
            let path = runtime + "/pods-\(mode).yaml"
            try """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: pods-\(mode)}
                spec:
                  maxDuration: 3s
                  faults:
                    - name: freeze
                      type: pause-process
                      duration: 2s
                      target: {pod: {namespace: shop, labels: {app: checkout}}, container: web, mode: \(mode)}
                      match: {cmdline: "flt-marker-web-"}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        for (mode, hits) in [("all", 2), ("one", 1)] {
            let file = try scenario(mode)
            let plan = try await runner.run([TestPaths.faultline, "plan", file] + options)
            #expect(plan.succeeded, "\(plan.standardError)\(plan.standardOutput)")
            let listed = ["checkout-a", "checkout-b"].filter { plan.standardOutput.contains("pod shop/\($0) → ") }
            #expect(listed.count == hits, "mode \(mode): \(plan.standardOutput)")
            #expect(!plan.standardOutput.contains("checkout-c"))
            let run = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes"] + options, table: ProcessTable(), output: runtime + "/run-\(mode).log")
            var paused: [String] = []
            for _ in 0..<60 where paused.count < hits {
                paused = web.filter { ProcessTable().read($0.value.pid).map(\.isStopped) == true }.keys.sorted()
                if paused.count < hits { try await Task.sleep(for: .milliseconds(50)) }
            }
            try await Task.sleep(for: .milliseconds(200))
            paused = web.filter { ProcessTable().read($0.value.pid).map(\.isStopped) == true }.keys.sorted()
            #expect(paused.count == hits && !paused.contains("checkout-c"), "mode \(mode): paused \(paused)")
            let exit = await ChildProcess.waitForExit(run.pid)
            #expect(exit == 0, "mode \(mode): faultline run exited \(exit): \((try? String(contentsOfFile: runtime + "/run-\(mode).log", encoding: .utf8)) ?? "")")
            #expect(web.values.allSatisfy { ProcessTable().read($0.pid).map(\.isStopped) == false }, "mode \(mode): a web process is still paused")
        }
        // A pod that is not on this node: nothing applied, exit 3, and why.
        let missing = runtime + "/missing.yaml"
        try String(contentsOfFile: try scenario("all"), encoding: .utf8).replacingOccurrences(of: "app: checkout", with: "app: nowhere")
            .write(toFile: missing, atomically: true, encoding: .utf8)
        let refused = try await runner.run([TestPaths.faultline, "run", missing, "--yes"] + options, timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(refused.exitCode == 3 && refused.standardError.contains("no running pod is pods in shop with app=nowhere container web"), "\(refused.standardError)")

        // Two nodes' agents (here: two agents, one asking this containerd, one another containerd without pods): the
        // agent whose node runs none of the pods has nothing to do, which is fine as long as another took the run.
        guard let empty = try await Self.up("containerd") else { return }
        var agents: [TestAgent] = []
        do {
            for (name, socket) in [("pods", runtime), ("none", empty)] {
                agents.append(try await TestAgent.start(directory: runtime, state: runtime + "/agent-\(name)", token: "fleet-token-\(tag)",
                                                        extra: ["--runtime-socket", socket + "/containerd.sock"]))
            }
            let tokenFile = runtime + "/fleet-token"
            _ = FileManager.default.createFile(atPath: tokenFile, contents: Data("fleet-token-\(tag)".utf8), attributes: [.posixPermissions: 0o600])
            let controller = ["--token-file", tokenFile] + agents.flatMap { ["--agent", $0.url] }
            let fleet = try await runner.run([TestPaths.faultline, "submit", try scenario("all"), "--wait"] + controller,
                                             timeout: .seconds(60), outputLimit: 1 << 20)
            let rows = fleet.standardOutput.split(separator: "\n")
            let events = fleet.exitCode == 0 ? "" : Self.events(in: runtime + "/agent-pods")
            #expect(fleet.exitCode == 0, "submit to both exited \(fleet.exitCode): \(fleet.standardOutput)\(fleet.standardError)\nthe run's events on the agent with the pods:\n\(events)")
            #expect(rows.contains { $0.hasPrefix(agents[1].url.replacingOccurrences(of: "http://", with: "")) && $0.contains("no pods here") }, "\(fleet.standardOutput)")
            #expect(rows.contains { $0.hasPrefix(agents[0].url.replacingOccurrences(of: "http://", with: "")) && $0.contains(" running ") }, "\(fleet.standardOutput)")
            #expect(web.values.allSatisfy { ProcessTable().read($0.pid).map(\.isStopped) == false }, "a web process is still paused after --wait")
            // Sent only where no pod runs, nothing runs anywhere: exit 3, and it says so.
            let nowhere = try await runner.run([TestPaths.faultline, "submit", try scenario("all"), "--agent", agents[1].url, "--token-file", tokenFile],
                                               timeout: .seconds(60), outputLimit: 1 << 20)
            #expect(nowhere.exitCode == 3 && nowhere.standardError.contains("no agent runs the scenario's pods"), "\(nowhere.exitCode): \(nowhere.standardOutput)\(nowhere.standardError)")
            // A one-shot run is judged when it is submitted: only the agent with the pods schedules it.
            let later = try await runner.run([TestPaths.faultline, "submit", try scenario("all"), "--in", "10m"] + controller,
                                             timeout: .seconds(60), outputLimit: 1 << 20)
            let laterRows = later.standardOutput.split(separator: "\n")
            #expect(later.exitCode == 0, "submit --in to both exited \(later.exitCode): \(later.standardOutput)\(later.standardError)")
            #expect(laterRows.contains { $0.hasPrefix(agents[1].url.replacingOccurrences(of: "http://", with: "")) && $0.contains("no pods here") }, "\(later.standardOutput)")
            #expect(laterRows.contains { $0.hasPrefix(agents[0].url.replacingOccurrences(of: "http://", with: "")) && $0.contains(" scheduled ") }, "\(later.standardOutput)")
            let laterNowhere = try await runner.run([TestPaths.faultline, "submit", try scenario("all"), "--in", "10m", "--agent", agents[1].url, "--token-file", tokenFile],
                                                    timeout: .seconds(60), outputLimit: 1 << 20)
            #expect(laterNowhere.exitCode == 3 && laterNowhere.standardError.contains("no agent runs the scenario's pods"), "\(laterNowhere.exitCode): \(laterNowhere.standardError)")
            let cancelled = try await runner.run([TestPaths.faultline, "abort", "--all"] + controller, timeout: .seconds(60), outputLimit: 1 << 20)
            #expect(cancelled.succeeded, "\(cancelled.standardOutput)\(cancelled.standardError)")
            // A cron schedule is kept on every node; fired where none of the pods runs, it makes no run and says why.
            try await cronFiresWithoutPods(scenario: try String(contentsOfFile: try scenario("all"), encoding: .utf8),
                                           socket: empty + "/containerd.sock", state: runtime + "/agent-cron")
        } catch {
            for agent in agents { _ = await agent.stop() }
            await Self.down(empty)
            throw error
        }
        for agent in agents { #expect(await agent.stop() == 0, "\(agent.output)") }
        await Self.down(empty)
    }

    /// The agent's registry in this process, asking a containerd that runs no pods, fires a cron schedule of a pod
    /// target at once (instead of at the next minute): no run is made, and the schedule's lastSkipReason says why.
    func cronFiresWithoutPods(scenario: String, socket: String, state: String) async throws {
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let credentials = try AgentCredentials(fixed: [AgentCredential(name: "ops", role: .operate, token: String(repeating: "o", count: 40))],
                                               file: nil, minimumLength: 32)
        var configuration = AgentConfiguration(host: "127.0.0.1", port: 0, credentials: credentials, stateDirectory: state,
                                               executable: TestPaths.faultline, forwarded: [])
        configuration.runtimeSocket = socket
        let registry = try RunRegistry(configuration: configuration) { _ in }
        await registry.prepare()
        let created = try registry.schedule(ScheduleRequest(scenario: scenario, cron: "@daily", timeZone: nil, lease: nil, id: nil), source: "pods.yaml")
        let entry = try #require(registry.schedules.withLock { $0[created.id] })
        await registry.fire(entry, now: Date())
        let after = try #require(registry.listSchedules().first { $0.id == created.id })
        #expect(after.lastRunID == nil && after.lastFiredAt != nil, "\(after)")
        #expect(after.lastSkipReason?.contains("none of the scenario's pods ran on this node") == true, "\(after)")
        #expect(after.state == "active" && after.nextAt != nil)
        let made = registry.runs.withLock { Array($0.keys) } + registry.finished.withLock { Array($0.keys) }
        #expect(made.isEmpty, "a run was made: \(made)")
        registry.stopAll()
    }
}
