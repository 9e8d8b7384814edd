import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `faultline run` end to end: a real HTTP service in namespace B, the runner inside namespace A
/// (its own namespace, as a sidecar's), real faults, real signals.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces && Privilege.hasTool("python3"), "needs root, ip, tc, iptables, nsenter and python3"))
struct RunEndToEndTests {
    struct Setup {
        let net: TestNetwork
        let directory: String
        var state: String { directory + "/state" }

        /// A scenario file; `target` names a network namespace for the whole scenario.
        func file(_ name: String, faults: String, steadyState: String = defaultSteadyState, maxDuration: String = "20s",
                  target: String? = nil) throws -> String {
            let path = "\(directory)/\(name).yaml"
            try """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: \(name), runbook: "https://wiki.example/runbooks/\(name)"}
                spec:
                  maxDuration: \(maxDuration)
                \(target.map { "  target: {netns: \($0)}" } ?? "")
                \(steadyState)
                  faults:
                \(faults)
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        static let defaultSteadyState = """
              steadyState:
                probes:
                  - name: web
                    interval: 200ms
                    http: {url: "http://\(TestNetwork.addressB):8080/", timeout: 300ms}
                  - name: closed-port
                    interval: 200ms
                    tcp: {address: "\(TestNetwork.addressB):9999", timeout: 300ms, expect: unreachable}
                slo: {objective: 90%}
                abortWhen: {consecutiveFailures: 3}
            """

        /// Starts `faultline ARGS` inside namespace A; stdout and stderr go to `log`.
        func start(_ arguments: [String], prefix: [String] = []) throws -> (ProcessIdentity, log: String) {
            let log = "\(directory)/faultline-\(UInt32.random(in: 0 ... .max)).log"
            // With a prefix (capsh --shell=faultline), the prefix starts faultline itself.
            let argv = ["/usr/sbin/ip", "netns", "exec", net.a] + prefix + (prefix.isEmpty ? [TestPaths.faultline] : []) + arguments
            return (try ChildProcess.spawn(argv, table: ProcessTable(), output: log), log)
        }

        func run(_ arguments: [String], prefix: [String] = []) async throws -> (exit: Int32, output: String) {
            let (child, log) = try start(arguments, prefix: prefix)
            let exit = await ChildProcess.waitForExit(child.pid)
            return (exit, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }

        func chains() async throws -> [String] {
            try await net.must(["ip", "netns", "exec", net.a, "iptables", "-S"]).standardOutput
                .split(separator: "\n").filter { $0.hasPrefix("-N FAULTLINE") }.map { String($0.dropFirst(3)) }
        }

        /// Starts a Python HTTP server in namespace A on loopback (or, `inA: false`, on the machine's own loopback) —
        /// `source` defines `Handler` and reads `port` and `output` from its arguments — and waits until it listens;
        /// returns it and its port.
        func startServer(_ name: String, _ source: String, output: String, python: String = "python3", inA: Bool = true) async throws -> (ProcessIdentity, Int) {
            let enter = inA ? ["/usr/sbin/ip", "netns", "exec", net.a] : []
            let script = "\(directory)/\(name).py"
            let serve = """

                Handler.log_message = lambda *args: None
                server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
                server.daemon_threads = True
                server.serve_forever()

                """
            try (source + serve).write(toFile: script, atomically: true, encoding: .utf8)
            let port = Int.random(in: 20_000 ... 40_000)
            let server = try ChildProcess.spawn(enter + [python, script, "\(port)", output],
                                                table: ProcessTable(), output: "\(directory)/\(name).out")
            for _ in 0..<100 {
                let connect = try await SubprocessRunner().run(enter + ["python3", "-c",
                    "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', \(port))))"])
                if connect.exitCode == 0 { return (server, port) }
                try await Task.sleep(for: .milliseconds(50))
            }
            stop(server)
            throw TestFailure("the \(name) server did not listen on 127.0.0.1:\(port)\(inA ? " in \(net.a)" : "")")
        }

        func stop(_ server: ProcessIdentity) {
            _ = try? ProcessSignaller().send(.kill, to: server)
            _ = ChildProcess.reap(server.pid)
        }

        /// Kills the runner with SIGKILL and waits up to 5 s for its chains to go; returns how long that took, or nil.
        func killRunnerAndWaitForTheRevert(_ runner: ProcessIdentity) async throws -> Duration? {
            kill(runner.pid, SIGKILL)
            let killed = ContinuousClock.now
            _ = await ChildProcess.waitForExit(runner.pid)
            while ContinuousClock.now - killed < .seconds(5) {
                if try await chains().isEmpty { return ContinuousClock.now - killed }
                try await Task.sleep(for: .milliseconds(5))
            }
            return nil
        }

        /// Waits until a Faultline chain exists in A and returns its name.
        func waitForChain() async throws -> String {
            for _ in 0..<400 {
                if let chain = try await chains().first { return chain }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw TestFailure("no Faultline chain appeared in \(net.a)")
        }
    }

    func withSetup(_ body: (Setup) async throws -> Void) async throws {
        try await TestNetwork.with(serving: [8080: 100, 9090: 100], directoryTag: "e2e") { net, directory in
            try await body(Setup(net: net, directory: directory))
        }
    }

    func report(_ directory: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/report.json"))
        return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
    }

    @Test func aHarmlessFaultKeepsTheSteadyStateAndExitsZero() async throws {
        try await withSetup { setup in
            let file = try setup.file("harmless", faults: "    - {name: unused-port, type: drop, duration: 2s, to: {ports: [9999], protocol: tcp}}")
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out",
                                              "--junit", setup.directory + "/junit.xml"])
            #expect(result.exit == 0, "\(result.output)")
            let report = try report(setup.directory + "/out")
            #expect(report["state"] as? String == "succeeded")
            #expect((report["slo"] as? [String: Any])?["met"] as? Bool == true)
            let faults = report["faults"] as? [[String: Any]]
            #expect(faults?.first?["state"] as? String == "reverted")
            // The closed-port probe's connection attempts are what the drop acted on.
            let evidence = faults?.first?["evidence"] as? [String: Any]
            #expect((evidence?["hits"] as? Double ?? 0) > 0 && evidence?["unit"] as? String == "packets", "\(evidence ?? [:])")
            #expect((evidence?["detail"] as? String)?.contains("dropped by iptables") == true, "\(evidence ?? [:])")
            #expect(report["verdict"] as? String == "held")
            // The JUnit file is XML; the HTML report carries its chart inline.
            let xml = try await SubprocessRunner().run(["/usr/bin/python3", "-c", "import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); print(r.get('tests'), r.get('failures'))", setup.directory + "/junit.xml"])
            #expect(xml.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines) == "3 0", "\(xml.standardError)")
            let html = try String(contentsOfFile: setup.directory + "/out/report.html", encoding: .utf8)
            #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"1300\""))
            #expect(html.contains("class=\"fault\""))
            #expect(!html.contains("<script") && !html.contains("src=\"http"), "no external assets")
            #expect(try await setup.chains().isEmpty)
        }
    }

    @Test func probesRunInsideTheScenariosTarget() async throws {
        try await withSetup { setup in
            // 127.0.0.1:8080 answers only inside B; the runner lives in A and targets B.
            let steady = """
                  target: {netns: \(setup.net.b)}
                  steadyState:
                    probes:
                      - {name: local-web, interval: 200ms, http: {url: "http://127.0.0.1:8080/", timeout: 500ms}}
                      - {name: local-port, interval: 200ms, tcp: {address: "127.0.0.1:8080", timeout: 500ms}}
                      - {name: closed-port, interval: 200ms, tcp: {address: "\(TestNetwork.addressA):9999", timeout: 300ms, expect: unreachable}}
                    abortWhen: {consecutiveFailures: 2}
                """
            let file = try setup.file("in-target", faults: "    - {name: unused, type: drop, duration: 1s, to: {ports: [9999], protocol: tcp}}",
                                      steadyState: steady)
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out"])
            #expect(result.exit == 0, "\(result.output)")
            let probes = try report(setup.directory + "/out")["probes"] as? [[String: Any]] ?? []
            #expect(probes.count >= 9)
            #expect(probes.allSatisfy { $0["ok"] as? Bool == true })
        }
    }

    @Test("a fault that matches nothing proves nothing: an ingress drop written with the service's port as 'to' (the remote end) drops no packet, and the run is inconclusive (exit 5), not held; written with 'from', it cuts the service off")
    func aFaultThatMatchesNothingIsInconclusive() async throws {
        try await withSetup { setup in
            // The faults act in B (the service's namespace); the probes run in A, as the service's clients.
            let steady = """
                  steadyState:
                    probes:
                      - {name: web, interval: 200ms, http: {url: "http://\(TestNetwork.addressB):8080/", timeout: 300ms}}
                    abortWhen: {consecutiveFailures: 3}
                """
            let wrong = try setup.file("wrong-end", faults: "    - {name: cut, type: drop, duration: 2s, direction: ingress, to: {ports: [8080], protocol: tcp}, target: {netns: \(setup.net.b)}}",
                                       steadyState: steady)
            let result = try await setup.run(["run", wrong, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/wrong"])
            #expect(result.exit == 5, "\(result.output)")
            #expect(result.output.contains("acted on nothing"), "\(result.output)")
            let wrongReport = try report(setup.directory + "/wrong")
            #expect(wrongReport["state"] as? String == "inconclusive" && wrongReport["verdict"] as? String == "inconclusive" && wrongReport["exitCode"] as? Int == 5)
            #expect((wrongReport["abortReason"] as? String)?.contains("fault 'cut' acted on nothing while it was in place") == true, "\(wrongReport["abortReason"] ?? "")")
            let evidence = (wrongReport["faults"] as? [[String: Any]])?.first?["evidence"] as? [String: Any]
            #expect(evidence?["hits"] as? Double == 0 && evidence?["unit"] as? String == "packets", "\(evidence ?? [:])")
            #expect((evidence?["detail"] as? String)?.contains("no packet matched") == true, "\(evidence ?? [:])")
            #expect(try await setup.net.must(["ip", "netns", "exec", setup.net.b, "iptables", "-S"]).standardOutput.contains("FAULTLINE") == false)

            // The local end is 'from': the same drop cuts the service off, and its evidence counts the packets.
            let right = try setup.file("right-end", faults: "    - {name: cut, type: drop, start: 500ms, duration: 3s, direction: ingress, from: {ports: [8080], protocol: tcp}, target: {netns: \(setup.net.b)}}",
                                       steadyState: steady)
            let cut = try await setup.run(["run", right, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/right"])
            #expect(cut.exit == 1, "\(cut.output)")
            let dropped = (try report(setup.directory + "/right")["faults"] as? [[String: Any]])?.first?["evidence"] as? [String: Any]
            #expect((dropped?["hits"] as? Double ?? 0) > 0 && (dropped?["detail"] as? String)?.contains("dropped by iptables") == true, "\(dropped ?? [:])")
        }
    }

    @Test func dropOnTheServicePortAbortsRevertsAndExitsOne() async throws {
        try await withSetup { setup in
            let file = try setup.file("outage", faults: "    - {name: cut, type: drop, start: 1s, to: {hosts: [\(TestNetwork.addressB)], ports: [8080], protocol: tcp}}")
            let started = ContinuousClock.now
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out"])
            #expect(result.exit == 1, "\(result.output)")
            #expect(ContinuousClock.now - started < .seconds(10), "the abort ends the run long before maxDuration")
            let report = try report(setup.directory + "/out")
            #expect(report["state"] as? String == "aborted")
            #expect((report["abortReason"] as? String)?.contains("probe 'web' failed 3 times in a row") == true)
            #expect(((report["abortedAt"] as? Double) ?? 0) >= 1.0)
            #expect((report["faults"] as? [[String: Any]])?.first?["state"] as? String == "reverted")
            #expect(try await setup.chains().isEmpty)
            let markdown = try String(contentsOfFile: setup.directory + "/out/report.md", encoding: .utf8)
            #expect(markdown.contains("| abort | probe 'web' failed 3 times in a row"))
            #expect(markdown.contains("https://wiki.example/runbooks/outage"))
        }
    }

    @Test func sigintRevertsAndExits130() async throws {
        try await withSetup { setup in
            let file = try setup.file("interrupted", faults: "    - {name: cut, type: drop, to: {ports: [9999], protocol: tcp}}")
            let (runner, log) = try setup.start(["run", file, "--yes", "--state-dir", setup.state])
            _ = try await setup.waitForChain()
            kill(runner.pid, SIGINT)
            let exit = await ChildProcess.waitForExit(runner.pid)
            #expect(exit == 130, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            #expect(try await setup.chains().isEmpty)
        }
    }

    @Test func afterSIGKILLTheGuardRevertsWithinTwoSeconds() async throws {
        try await withSetup { setup in
            let file = try setup.file("killed", faults: "    - {name: cut, type: drop, to: {ports: [9999], protocol: tcp}}")
            let (runner, _) = try setup.start(["run", file, "--yes", "--state-dir", setup.state])
            _ = try await setup.waitForChain()
            let took = try await setup.killRunnerAndWaitForTheRevert(runner)
            print("guard recovery after SIGKILL: \(took.map { "\($0)" } ?? "none within 5 s")")
            #expect(took.map { $0 < .seconds(2) } == true)
            let journal = try Journal(directory: setup.state)
            for _ in 0..<200 where try journal.runs().last?.state != .failed { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try journal.runs().last?.state == .failed)
            #expect(try journal.pendingFaults().isEmpty)
        }
    }

    @Test func aRevertThatCannotSucceedExitsFourAndRecoverCleansUpLater() async throws {
        try await withSetup { setup in
            let file = try setup.file("stuck", faults: "    - {name: cut, type: drop, duration: 2s, to: {ports: [9999], protocol: tcp}}")
            let (runner, log) = try setup.start(["run", file, "--yes", "--state-dir", setup.state])
            let chain = try await setup.waitForChain()
            // An obstacle: another rule refers to the chain, so it cannot be deleted.
            try await setup.net.must(["ip", "netns", "exec", setup.net.a, "iptables", "-w", "5", "-A", "FORWARD", "-j", chain])
            let exit = await ChildProcess.waitForExit(runner.pid)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(exit == 4, "\(output)")
            #expect(output.contains("to clean up by hand run"))
            #expect(try Journal(directory: setup.state).pendingFaults().map(\.name) == ["cut"])
            try await setup.net.must(["ip", "netns", "exec", setup.net.a, "iptables", "-w", "5", "-D", "FORWARD", "-j", chain])
            let recover = try await setup.run(["recover", "--state-dir", setup.state])
            #expect(recover.exit == 0, "\(recover.output)")
            #expect(try await setup.chains().isEmpty)
            #expect(try Journal(directory: setup.state).pendingFaults().isEmpty)
        }
    }

    @Test func theJournalStillWritesWhileADiskFillFillsItsFilesystem() async throws {
        try await withSetup { setup in
            let mount = setup.directory + "/small"
            try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
            try await setup.net.must(["mount", "-t", "tmpfs", "-o", "size=16m", "flt-test-tmpfs", mount])
            defer { _ = try? FileManager.default.removeItem(atPath: mount) }
            do {
                let state = mount + "/state"
                let file = try setup.file("full-disk", faults: "    - {name: fill, type: disk-fill, path: \(mount), fillTo: 100%, duration: 1s}",
                                          steadyState: "")
                let result = try await setup.run(["run", file, "--yes", "--state-dir", state])
                // Looked at before the test opens the journal, which makes a new reserve when there is room.
                let released = !FileManager.default.fileExists(atPath: state + "/journal.reserve")
                let journal = try Journal(directory: state)
                #expect(try journal.faults(of: journal.runs().last!.id).map(\.state) == [.reverted])
                print("disk-fill of the journal's filesystem: reserve \(released ? "released" : "kept")")
                if released {
                    // The journal took its 4 MiB back to record the run: the filesystem was not 100% full for the
                    // whole fault, and the run says so (degraded, inconclusive) rather than claiming the fill held.
                    #expect(result.exit == 5, "\(result.output)")
                    #expect(try journal.runs().last?.state == .inconclusive)
                    #expect(result.output.contains("free again (the fill left") && result.output.contains("not the 100% asked"), "\(result.output)")
                } else {
                    #expect(result.exit == 0, "\(result.output)")
                    #expect(try journal.runs().last?.state == .succeeded)
                }
            } catch {
                _ = try? await SubprocessRunner().run(["umount", mount])
                throw error
            }
            _ = try await SubprocessRunner().run(["umount", mount])
        }
    }

    @Test func anInvalidFileExitsTwoAndAMissingCapabilityExitsThreeWithNothingApplied() async throws {
        try await withSetup { setup in
            let broken = setup.directory + "/broken.yaml"
            try "apiVersion: faultline/v1\nkind: Scenario\nmetadata: {name: x}\nspec: {maxDuration: 1m, faults: [{name: a, type: drop, dealy: 1}]}\n"
                .write(toFile: broken, atomically: true, encoding: .utf8)
            let invalid = try await setup.run(["run", broken, "--yes", "--state-dir", setup.state])
            #expect(invalid.exit == 2)
            #expect(invalid.output.contains("unknown key 'dealy'"))
            let file = try setup.file("no-cap", faults: "    - {name: cut, type: drop, to: {ports: [8080], protocol: tcp}}")
            let denied = try await setup.run(["--", "run", file, "--yes", "--state-dir", setup.state],
                                             prefix: ["/usr/sbin/capsh", "--drop=cap_net_admin", "--shell=\(TestPaths.faultline)"])
            #expect(denied.exit == 3, "\(denied.output)")
            #expect(denied.output.contains("CAP_NET_ADMIN"))
            #expect(denied.output.contains("nothing was applied"))
            #expect(try await setup.chains().isEmpty)
        }
    }

    @Test("a stop of the whole group (SIGTERM to the guard, SIGKILL to the runner, as systemd or a container runtime do) still reverts")
    func theGuardOutlivesAStopOfItsWholeGroup() async throws {
        try await withSetup { setup in
            let file = try setup.file("group-stop", faults: "    - {name: cut, type: drop, to: {ports: [9999], protocol: tcp}}")
            let (runner, _) = try setup.start(["run", file, "--yes", "--state-dir", setup.state])
            _ = try await setup.waitForChain()
            var guardPID: Int32?
            for _ in 0..<200 where guardPID == nil {
                guardPID = ProcessTable().all().first { $0.arguments.count > 1 && $0.arguments[1] == "guard" && $0.arguments.contains(setup.state) }?.pid
                if guardPID == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let guardian = try #require(guardPID, "no guard process for the run")
            // The guard ignores SIGTERM from its first instruction; wait until the kernel shows it (bit 15 of SigIgn).
            func ignoresTerm() -> Bool {
                let status = (try? String(contentsOfFile: "/proc/\(guardian)/status", encoding: .utf8)) ?? ""
                let mask = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") }.flatMap { UInt64($0.dropFirst(7).trimmingCharacters(in: .whitespaces), radix: 16) }
                return (mask ?? 0) & (1 << (UInt64(SIGTERM) - 1)) != 0
            }
            for _ in 0..<200 where !ignoresTerm() { try await Task.sleep(for: .milliseconds(5)) }
            #expect(ignoresTerm(), "the guard does not ignore SIGTERM")
            kill(guardian, SIGTERM)
            #expect(try await setup.killRunnerAndWaitForTheRevert(runner) != nil, "the guard took SIGTERM and left the rule")
            let journal = try Journal(directory: setup.state)
            for _ in 0..<300 where kill(guardian, 0) == 0 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(kill(guardian, 0) != 0, "the guard ends by itself once its run is reverted")
            #expect(try journal.pendingFaults().isEmpty)
        }
    }

    @Test("as a non-root user, a binary with file capabilities cap_net_admin,cap_net_raw=ip injects and reverts; without them exit 3",
          .enabled(if: Privilege.hasTool("setcap") && Privilege.hasTool("setpriv"), "needs setcap (libcap2-bin) and setpriv (util-linux)"))
    func aNonRootUserWithFileCapabilitiesRunsNetworkFaults() async throws {
        try await withSetup { setup in
            // The image's user: uid 65532, a bounding set of NET_ADMIN and NET_RAW (a pod that adds only those).
            let bin = setup.directory + "/bin"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: setup.directory)
            for name in ["capable", "plain"] { try FileManager.default.copyItem(atPath: TestPaths.faultline, toPath: "\(bin)/\(name)") }
            try await setup.net.must(["setcap", "cap_net_admin,cap_net_raw=ip", bin + "/capable"])
            let state = setup.directory + "/state-65532"
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            #expect(chown(state, 65532, 65532) == 0)
            let file = try setup.file("non-root", faults: "    - {name: cut, type: drop, duration: 2s, to: {ports: [9999], protocol: tcp}}")
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file)
            let user = ["/usr/bin/setpriv", "--reuid", "65532", "--regid", "65532", "--clear-groups",
                        "--bounding-set", "-all,+net_admin,+net_raw", "--inh-caps", "-all", "--"]

            let denied = try await setup.run(["run", file, "--yes", "--state-dir", state], prefix: user + [bin + "/plain"])
            #expect(denied.exit == 3, "\(denied.output)")
            #expect(denied.output.contains("NET_ADMIN") && denied.output.contains("nothing was applied"), "\(denied.output)")

            let (runner, log) = try setup.start(["run", file, "--yes", "--state-dir", state], prefix: user + [bin + "/capable"])
            _ = try await setup.waitForChain()
            let status = try String(contentsOfFile: "/proc/\(runner.pid)/status", encoding: .utf8)
            print("non-root runner: \(status.split(separator: "\n").filter { $0.hasPrefix("Uid") || $0.hasPrefix("CapAmb") }.joined(separator: ", "))")
            let exit = await ChildProcess.waitForExit(runner.pid)
            #expect(exit == 0, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            #expect(try await setup.chains().isEmpty)
        }
    }

    /// A webhook receiver in namespace A on loopback: /ok answers 200, /fail 500, /hang never; each request is one
    /// line `PATH BODY` in `output`.
    static let webhookReceiver = """
        import http.server, sys, time
        port, output = int(sys.argv[1]), sys.argv[2]
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with open(output, "a") as f:
                    f.write(self.path + " " + body.replace("\\n", " ") + "\\n")
                if self.path == "/hang":
                    time.sleep(60)
                    return
                self.send_response(500 if self.path == "/fail" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()
        """

    @Test("webhooks get start, abort and end in order; one that answers 500 and one that hangs delay neither the abort nor the revert")
    func webhooksAreToldInOrderAndNeverHoldUpTheRevert() async throws {
        try await withSetup { setup in
            let received = setup.directory + "/webhooks.log"
            let (receiver, port) = try await setup.startServer("webhooks", Self.webhookReceiver, output: received)
            defer { setup.stop(receiver) }
            let base = "http://127.0.0.1:\(port)"
            let notify = """
                \(Setup.defaultSteadyState)
                  notify:
                    - {url: "\(base)/ok"}
                    - {url: "\(base)/fail", events: [abort]}
                    - {url: "\(base)/hang"}
                """
            let file = try setup.file("told", faults: "    - {name: cut, type: drop, start: 1s, to: {hosts: [\(TestNetwork.addressB)], ports: [8080], protocol: tcp}}",
                                      steadyState: notify)
            // --notify adds a hook for every event; one the scenario names already is not sent twice.
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out",
                                              "--notify", "\(base)/extra", "--notify", "\(base)/ok"])
            let exited = Date()
            #expect(result.exit == 1, "\(result.output)")
            let report = try report(setup.directory + "/out")
            let abortedAt = try #require(report["abortedAt"] as? Double)
            let revertedAt = try #require((report["faults"] as? [[String: Any]])?.first?["revertedAt"] as? Double)
            print("webhooks: reverted \(revertedAt - abortedAt) s after the abort; the process ended \(exited.timeIntervalSince(ISO8601DateFormatter().date(from: report["endedAt"] as? String ?? "") ?? exited)) s after the run")
            #expect(revertedAt - abortedAt < 1, "the revert waited for a webhook")
            #expect(result.output.contains("notify: '\(base)/fail' answered 500 to the abort message"), "\(result.output)")
            #expect(result.output.contains("\(base)/hang"), "the hanging hook is named: \(result.output)")
            if let ended = (report["endedAt"] as? String).flatMap({ ISO8601DateFormatter().date(from: $0) }) {
                #expect(exited.timeIntervalSince(ended) < 7, "the queue drains for at most 5 s after the run")
            }
            let lines = try String(contentsOfFile: received, encoding: .utf8).split(separator: "\n")
            func events(_ path: String) -> [String] {
                lines.filter { $0.hasPrefix(path + " ") }.compactMap { line in
                    let object = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(path.count + 1).utf8)) as? [String: Any]
                    return object?["event"] as? String
                }
            }
            #expect(events("/ok") == ["start", "abort", "end"])
            #expect(events("/extra") == ["start", "abort", "end"])
            #expect(events("/fail") == ["abort"])
            #expect(events("/hang").first == "start", "the hanging hook got the first message and held the rest")
            let first = try #require(lines.first { $0.hasPrefix("/ok ") })
            let message = try JSONSerialization.jsonObject(with: Data(first.dropFirst(4).utf8)) as? [String: Any] ?? [:]
            #expect(message["scenario"] as? String == "told")
            #expect(message["run"] as? String == report["runID"] as? String)
            #expect((message["text"] as? String)?.hasPrefix("faultline · told · run ") == true, "\(message)")
            // The abort carries the runbook, in the message and on the terminal, right after the abort line.
            let abort = try #require(lines.first { $0.hasPrefix("/ok ") && $0.contains("\"event\":\"abort\"") })
            let aborted = try JSONSerialization.jsonObject(with: Data(abort.dropFirst(4).utf8)) as? [String: Any] ?? [:]
            #expect(aborted["runbook"] as? String == "https://wiki.example/runbooks/told", "\(aborted)")
            #expect((aborted["text"] as? String)?.hasSuffix(" · runbook: https://wiki.example/runbooks/told") == true, "\(aborted)")
            #expect(message["runbook"] == nil, "the start message has no runbook: \(message)")
            #expect(result.output.contains("runbook: https://wiki.example/runbooks/told"), "\(result.output)")
            #expect(try await setup.chains().isEmpty)
        }
    }

    /// A Grafana annotations API in namespace A on loopback: POST /api/annotations answers a new id, PATCH
    /// /api/annotations/ID answers ok, anything under /down never answers; each request is one JSON line in `output`.
    static let grafanaFake = """
        import http.server, json, sys, time, itertools
        port, output = int(sys.argv[1]), sys.argv[2]
        ids = itertools.count(1)
        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                with open(output, "a") as f:
                    f.write(json.dumps({"method": self.command, "path": self.path, "auth": self.headers.get("Authorization"),
                                        "body": json.loads(body or "{}")}) + "\\n")
                if self.path.startswith("/down"):
                    time.sleep(60)
                    return
                reply = json.dumps({"id": next(ids), "message": "Annotation added"} if self.command == "POST" else {"message": "Annotation patched"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)
            do_POST = answer
            do_PATCH = answer
        """

    @Test("each fault window and the abort become Grafana annotations with the right times and tags; Grafana down delays no revert")
    func grafanaGetsTheFaultWindowAndTheAbortAndNeverHoldsUpTheRevert() async throws {
        try await withSetup { setup in
            let received = setup.directory + "/grafana.log"
            let (fake, port) = try await setup.startServer("grafana", Self.grafanaFake, output: received)
            defer { setup.stop(fake) }
            let token = setup.directory + "/grafana-token"
            _ = FileManager.default.createFile(atPath: token, contents: Data("glsa_test\n".utf8), attributes: [.posixPermissions: 0o600])
            let file = try setup.file("shown", faults: "    - {name: cut, type: drop, start: 1s, to: {hosts: [\(TestNetwork.addressB)], ports: [8080], protocol: tcp}}")

            // Grafana up: the fault's annotation, the abort, then the fault's end.
            let result = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/out",
                                              "--grafana-url", "http://127.0.0.1:\(port)/", "--grafana-token-file", token])
            #expect(result.exit == 1, "\(result.output)")
            let report = try report(setup.directory + "/out")
            let fault = try #require((report["faults"] as? [[String: Any]])?.first)
            let injectedAt = try #require(fault["injectedAt"] as? Double), revertedAt = try #require(fault["revertedAt"] as? Double)
            let abortedAt = try #require(report["abortedAt"] as? Double)
            let requests = try String(contentsOfFile: received, encoding: .utf8).split(separator: "\n")
                .compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(requests.map { "\($0["method"] ?? "") \($0["path"] ?? "")" } == ["POST /api/annotations", "POST /api/annotations", "PATCH /api/annotations/1"])
            #expect(requests.allSatisfy { $0["auth"] as? String == "Bearer glsa_test" })
            let bodies = requests.map { $0["body"] as? [String: Any] ?? [:] }
            guard bodies.count == 3 else { return }
            #expect(bodies[0]["tags"] as? [String] == ["faultline", "shown", "cut"])
            #expect(bodies[1]["tags"] as? [String] == ["faultline", "shown", "abort"])
            let start = try #require(bodies[0]["time"] as? Double), abort = try #require(bodies[1]["time"] as? Double)
            let end = try #require(bodies[2]["timeEnd"] as? Double)
            print("grafana: window \(end - start) ms (report: \((revertedAt - injectedAt) * 1000)), abort at +\(abort - start) ms (report: \((abortedAt - injectedAt) * 1000))")
            #expect(abs((end - start) - (revertedAt - injectedAt) * 1000) < 250)
            #expect(abs((abort - start) - (abortedAt - injectedAt) * 1000) < 250)
            #expect((bodies[2]["text"] as? String)?.hasSuffix("reverted") == true)

            // Grafana down (never answers): the abort and the revert keep their pace; the run says so.
            let down = try await setup.run(["run", file, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/down",
                                            "--grafana-url", "http://127.0.0.1:\(port)/down"])
            #expect(down.exit == 1, "\(down.output)")
            let downReport = try self.report(setup.directory + "/down")
            let downReverted = try #require((downReport["faults"] as? [[String: Any]])?.first?["revertedAt"] as? Double)
            let downAborted = try #require(downReport["abortedAt"] as? Double)
            print("grafana down: reverted \(downReverted - downAborted) s after the abort")
            #expect(downReverted - downAborted < 1, "the revert waited for Grafana")
            #expect(down.output.contains("grafana: "), "\(down.output)")
            #expect(try await setup.chains().isEmpty)
        }
    }

    @Test("tcp probes that expect a connection to fail: a wall checked all along and one checked only during the partition pass while both hold; a hole aborts the run")
    func probesThatExpectUnreachableCheckThatPartitionsHold() async throws {
        try await withSetup { setup in
            func steadyState(_ port: Int) -> String {
                """
                  steadyState:
                    probes:
                      - name: closed-port
                        interval: 200ms
                        tcp: {address: "\(TestNetwork.addressB):9999", timeout: 300ms, expect: unreachable}
                      - name: wall
                        interval: 200ms
                        during: partition
                        tcp: {address: "\(TestNetwork.addressB):\(port)", timeout: 300ms, expect: unreachable}
                    abortWhen: {consecutiveFailures: 2}
                """
            }
            let partition = "    - {name: partition, type: drop, start: 500ms, duration: 2s, to: {hosts: [\(TestNetwork.addressB)], ports: [8080], protocol: tcp}}"
            let holds = try setup.file("holds", faults: partition, steadyState: steadyState(8080))
            let held = try await setup.run(["run", holds, "--yes", "--state-dir", setup.state, "--report", setup.directory + "/holds"])
            #expect(held.exit == 0, "\(held.output)")
            let report = try report(setup.directory + "/holds")
            let closed = (report["probes"] as? [[String: Any]] ?? []).filter { $0["probe"] as? String == "closed-port" }
            #expect(Set(closed.compactMap { $0["phase"] as? String }) == ["before", "method", "after"], "checked all along")
            #expect(!closed.isEmpty && closed.allSatisfy { ($0["detail"] as? String)?.hasPrefix("unreachable: ") == true }, "\(closed.prefix(2))")
            let wall = (report["probes"] as? [[String: Any]] ?? []).filter { $0["probe"] as? String == "wall" }
            let fault = try #require((report["faults"] as? [[String: Any]])?.first)
            let injectedAt = try #require(fault["injectedAt"] as? Double), revertedAt = try #require(fault["revertedAt"] as? Double)
            print("during: \(wall.count) wall results while the partition was in place (\(injectedAt)–\(revertedAt) s)")
            #expect(wall.count >= 5, "a check every 200ms over 2 s")
            #expect(wall.allSatisfy { $0["phase"] as? String == "method" && $0["ok"] as? Bool == true }, "\(wall)")
            #expect(wall.allSatisfy { ($0["at"] as? Double ?? -1) >= injectedAt - 0.01 && ($0["at"] as? Double ?? .infinity) <= revertedAt })

            // The wall has a hole: port 9090 is not partitioned.
            let hole = try setup.file("hole", faults: partition, steadyState: steadyState(9090))
            let leaked = try await setup.run(["run", hole, "--yes", "--state-dir", setup.state])
            #expect(leaked.exit == 1, "\(leaked.output)")
            #expect(leaked.output.contains("probe 'wall' failed 2 times in a row (connected, expected unreachable)"), "\(leaked.output)")
            #expect(try await setup.chains().isEmpty)
        }
    }
}
