import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A run holds its target namespace by a pin for its whole life: the target's process may exit (an app container
/// restarted in its pod) and the revert still reaches the namespace; a namespace that is gone leaves nothing to revert.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces, "needs root, ip, tc, iptables and nsenter"))
struct NamespacePinTests {
    /// A namespace with a process of ours in it, a state dir and a scenario aimed at that process's pid.
    struct Setup {
        let namespace: TestNamespace
        let sleepers: TestSleepers
        let victim: ProcessIdentity
        var state: String { sleepers.directory.appendingPathComponent("state").path }
        var out: String { sleepers.directory.appendingPathComponent("out").path }

        func chains() async throws -> [String] {
            try await namespace.inside(["iptables", "-S"]).standardOutput.split(separator: "\n").filter { $0.hasPrefix("-N FAULTLINE") }.map(String.init)
        }

        func pinMounts() throws -> [String] {
            try String(contentsOfFile: "/proc/mounts", encoding: .utf8).split(separator: "\n").filter { $0.contains(state + "/pins/") }.map(String.init)
        }

        func scenario(target: String, duration: String = "4s") throws -> String {
            try Self.scenario(in: sleepers.directory, target: target, duration: duration)
        }

        static func scenario(in directory: URL, target: String, duration: String = "4s") throws -> String {
            let file = directory.appendingPathComponent("pinned.yaml").path
            try """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: pinned}
                spec:
                  maxDuration: 20s
                  target: \(target)
                  faults:
                    - {name: cut, type: drop, duration: \(duration), to: {hosts: [10.213.0.2], ports: [9], protocol: tcp}}
                """.write(toFile: file, atomically: true, encoding: .utf8)
            return file
        }

        func waitForChain() async throws {
            for _ in 0..<500 {
                if try await !chains().isEmpty { return }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw TestFailure("no Faultline chain appeared in \(namespace.name)")
        }

        func kill(_ process: ProcessIdentity) async {
            _ = try? ProcessSignaller().send(.kill, to: process)
            _ = await ChildProcess.waitForExit(process.pid)
        }
    }

    func withSetup(_ body: (Setup) async throws -> Void) async throws {
        let namespace = try await TestNamespace.create(address: "10.213.0.1/24", chatter: true)
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        do {
            let victim = try await namespace.start([sleepers.program, "300"], processName: sleepers.name)
            let setup = Setup(namespace: namespace, sleepers: sleepers, victim: victim)
            try await body(setup)
            for mount in try setup.pinMounts() {
                _ = umount2(String(mount.split(separator: " ")[1]), Int32(MNT_DETACH))
            }
        } catch {
            await namespace.remove()
            throw error
        }
        await namespace.remove()
    }

    @Test("target {pid: N}: N exits during the fault while its namespace lives on; the revert goes through the pin, exit 0, nothing left")
    func targetProcessGone() async throws {
        try await withSetup { setup in
            let file = try setup.scenario(target: "{pid: \(setup.victim.pid)}")
            let log = setup.sleepers.directory.appendingPathComponent("run.log").path
            let runner = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--state-dir", setup.state, "--report", setup.out],
                                                table: ProcessTable(), output: log)
            try await setup.waitForChain()
            #expect(try setup.pinMounts().count == 1, "the namespace is pinned while the run lasts")
            await setup.kill(setup.victim)
            #expect(!FileManager.default.fileExists(atPath: "/proc/\(setup.victim.pid)/ns/net"), "the target process is gone")
            let exit = await ChildProcess.waitForExit(runner.pid)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(exit == 0, "\(output)")
            #expect(try await setup.chains().isEmpty, "the drop was reverted in the namespace: \(output)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: setup.out + "/report.json"))) as? [String: Any])
            #expect((report["faults"] as? [[String: Any]])?.first?["state"] as? String == "reverted")
            #expect(try setup.pinMounts().isEmpty, "the pin is removed after the run")
            let journal = try Journal(directory: setup.state)
            #expect(try journal.runsWithPins().isEmpty)
            #expect(try journal.pendingFaults().isEmpty)
        }
    }

    @Test("runner and guard killed, the pin removed by hand: recover does not guess (exit 4, says what to do); after a reboot (another boot id) the fault is done, exit 0")
    func namespaceGoneIsDone() async throws {
        try await withSetup { setup in
            let file = try setup.scenario(target: "{pid: \(setup.victim.pid)}", duration: "15s")
            let runner = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--state-dir", setup.state],
                                                table: ProcessTable(), output: setup.sleepers.directory.appendingPathComponent("run.log").path)
            try await setup.waitForChain()
            // The guard first (its own session), then the runner: nothing reverts.
            let guards = ProcessTable().all().filter { $0.commandLine.contains(" guard --run ") && $0.commandLine.contains(setup.state) }
            #expect(guards.count == 1)
            for process in guards { _ = try? ProcessSignaller().send(.kill, to: process.identity) }
            await setup.kill(runner)
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await !setup.chains().isEmpty, "the fault is still in place")
            // The pin is removed by hand: the namespace may live on, and its number may be another's later.
            for mount in try setup.pinMounts() { _ = umount2(String(mount.split(separator: " ")[1]), Int32(MNT_DETACH)) }
            let lost = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--state-dir", setup.state], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(lost.exitCode == 4, "\(lost.standardError)")
            #expect(lost.standardError.contains("removed by hand") && lost.standardError.contains("not entering any other namespace"), "\(lost.standardError)")
            #expect(try await !setup.chains().isEmpty, "nothing was entered by guess")
            // A reboot: every namespace of before is gone. (Its boot id is rewritten in the journal to stand for one.)
            await setup.kill(setup.victim)
            await setup.namespace.remove()
            let journal = try Journal(directory: setup.state)
            let run = try #require(try journal.runs().first)
            for entry in try journal.faults(of: run.id) {
                guard case .inNamespace(var pin, let inner) = entry.record else { continue }
                pin.bootID = "an-earlier-boot"
                try journal.record(runID: run.id, fault: entry.name, type: entry.type, state: entry.state, record: .inNamespace(pin, inner))
            }
            let recover = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--state-dir", setup.state], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(recover.exitCode == 0, "\(recover.standardOutput)\(recover.standardError)")
            #expect(try journal.pendingFaults().isEmpty, "the fault is done: nothing of it can be left")
            #expect(try journal.runsWithPins().isEmpty)
            #expect(try journal.runs().first?.state == .failed)
            let again = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--state-dir", setup.state], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(again.exitCode == 0 && again.standardOutput.contains("nothing to recover"), "\(again.standardOutput)\(again.standardError)")
        }
    }

    @Test("a netns path that is a plain file is refused by plan and run, with nothing applied")
    func plainFileIsNotANamespace() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let plain = sleepers.directory.appendingPathComponent("not-a-netns").path
        try "".write(toFile: plain, atomically: true, encoding: .utf8)
        let state = sleepers.directory.appendingPathComponent("state").path
        let file = try Setup.scenario(in: sleepers.directory, target: "{netns: \(plain)}")
        let plan = try await SubprocessRunner().run([TestPaths.faultline, "plan", file, "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
        #expect((plan.standardOutput + plan.standardError).contains("\(plain) is not a namespace file"), "\(plan.standardOutput)")
        let run = try await SubprocessRunner().run([TestPaths.faultline, "run", file, "--yes", "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
        #expect(run.exitCode == 3, "\(run.standardError)")
        #expect(run.standardError.contains("nothing was applied"), "\(run.standardError)")
    }
}
