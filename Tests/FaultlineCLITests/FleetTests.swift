import FaultlineAgent
import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three agents, each in its own network namespace with its own service, driven by one controller
/// in a fourth namespace: submit a drop to all, abort --all, and a lease that outlives a killed controller.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces && Privilege.hasTool("python3") && Privilege.hasTool("openssl"), "needs root, ip, tc, iptables, nsenter, python3 and openssl"))
struct FleetTests {
    static let token = "fleet-\(UInt64.random(in: 0 ... .max))-\(UInt64.random(in: 0 ... .max))"

    struct Setup {
        let fleet: TestFleet
        let directory: String
        let agents: [TestAgent]
        /// `--agents dns:NAME:7465` instead of the inventory, for agents whose certificate lists only NAME.
        var discovery: String? = nil
        var inventory: String { directory + "/fleet.txt" }
        var tokenFile: String { directory + "/token" }
        /// The CA that signed the agents' certificates (the fleet speaks HTTPS across its network).
        var caFile: String { directory + "/ca.pem" }

        /// Runs `faultline ARGS --agents fleet.txt --token-file F` in the controller's namespace (`agents`: another
        /// `--agents` value, e.g. dns:NAME:PORT).
        func controller(_ arguments: [String], agents: String? = nil) async throws -> (exit: Int32, output: String) {
            let (child, log) = try startController(arguments, agents: agents)
            let exit = await ChildProcess.waitForExit(child.pid)
            return (exit, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }

        func startController(_ arguments: [String], agents: String? = nil) throws -> (ProcessIdentity, String) {
            let log = "\(directory)/controller-\(UInt32.random(in: 0 ... .max)).log"
            let argv = ["/usr/sbin/ip", "netns", "exec", fleet.controller, TestPaths.faultline] + arguments
                + ["--agents", agents ?? discovery ?? inventory, "--token-file", tokenFile, "--ca-file", caFile]
            return (try ChildProcess.spawn(argv, table: ProcessTable(), output: log), log)
        }

        /// Every run of every agent, as `faultline list --json` shows them.
        func runs() async throws -> [[String: Any]] {
            let (exit, output) = try await controller(["list", "--json"])
            guard exit == 0, let data = output.split(separator: "\n").last.map({ Data($0.utf8) }),
                  let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw TestFailure("faultline list --json exited \(exit): \(output)")
            }
            return (object["agents"] as? [[String: Any]] ?? []).flatMap { ($0["runs"] as? [[String: Any]]) ?? [] }
        }

        /// Waits until every agent has a run of `scenario` whose faults are all in `state`.
        func waitForFaults(_ scenario: String, state: String, timeout: Duration = .seconds(15)) async throws -> [[String: Any]] {
            let deadline = ContinuousClock.now + timeout
            var last: [[String: Any]] = []
            while ContinuousClock.now < deadline {
                last = try await runs().filter { $0["scenario"] as? String == scenario }
                if last.count == agents.count,
                   last.allSatisfy({ (($0["faults"] as? [[String: Any]]) ?? []).allSatisfy { $0["state"] as? String == state } }) {
                    return last
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestFailure("not every agent reached fault state '\(state)' for \(scenario): \(last)")
        }

        func scenario(_ name: String) throws -> String {
            let path = "\(directory)/\(name).yaml"
            try """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: \(name)}
                spec:
                  maxDuration: 60s
                  steadyState:
                    probes:
                      - name: service
                        interval: 200ms
                        http: {url: "http://127.0.0.1:8080/", timeout: 300ms}
                  faults:
                    - name: cut-off
                      type: drop
                      duration: 50s
                      direction: both
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    /// Builds the fleet, runs `body`, and always stops the agents (SIGTERM reverts) and removes the namespaces.
    /// `dnsName`: the only name the agents' certificate lists (no addresses): the controller finds them through DNS.
    func withFleet(dnsName: String? = nil, _ body: (Setup) async throws -> Void) async throws {
        let fleet = try await TestFleet.create(count: 3)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-fleet-\(UInt32.random(in: 0 ... .max))").path
        var agents: [TestAgent] = []
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: directory + "/token", contents: Data(Self.token.utf8), attributes: [.posixPermissions: 0o600])
            // Off loopback the agents serve HTTPS: one certificate for the members' addresses, checked by the controller.
            let names = dnsName.map { ["DNS:\($0)"] } ?? fleet.members.indices.map { "IP:\(TestFleet.address($0))" }
            let pki = try await TestPKI.make(directory, agentNames: names.joined(separator: ","))
            var inventory = "# the test fleet\n"
            for index in fleet.members.indices {
                try await fleet.serve(member: index, port: 8080)
                let agent = try await TestAgent.start(directory: directory, state: "\(directory)/state-\(index)", token: Self.token,
                                                      netns: fleet.members[index], listen: "\(TestFleet.address(index)):7465", extra: pki.agentOptions)
                agents.append(agent)
                inventory += "host-\(index + 1) https://\(TestFleet.address(index)):7465\n"
            }
            try inventory.write(toFile: directory + "/fleet.txt", atomically: true, encoding: .utf8)
            try await body(Setup(fleet: fleet, directory: directory, agents: agents, discovery: dnsName.map { "dns:\($0):7465" }))
            for index in fleet.members.indices {
                let left = try await fleet.leftovers(member: index)
                #expect(left.isEmpty, "member \(index) still has: \(left)")
            }
        } catch {
            for agent in agents { await agent.stop() }
            await fleet.remove()
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        for agent in agents {
            let exit = await agent.stop()
            #expect(exit == 0, "\(agent.output)")
        }
        await fleet.remove()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test("one controller submits a drop to three agents; abort --all reverts all of them; nothing is left")
    func submitAndAbortAll() async throws {
        try await withFleet { setup in
            let file = try setup.scenario("fleet-cut-off")
            let (exit, output) = try await setup.controller(["submit", file])
            #expect(exit == 0, "\(output)")
            #expect(output.components(separatedBy: " running ").count - 1 == 3, "\(output)")
            _ = try await setup.waitForFaults("fleet-cut-off", state: "active")
            for index in setup.fleet.members.indices {
                let during = try await setup.fleet.connect(to: index, port: 8080, count: 3, timeout: 0.3)
                #expect(during.ok == 0, "the service of member \(index) is cut off: \(during)")
            }
            // The agents stay reachable through the drop (their port is exempt): the controller sees them.
            let (statusExit, status) = try await setup.controller(["status"])
            #expect(statusExit == 0 && status.components(separatedBy: "fleet-cut-off").count - 1 == 3, "\(status)")

            let began = ContinuousClock.now
            let (abortExit, aborted) = try await setup.controller(["abort", "--all"])
            let took = ContinuousClock.now - began
            print("abort --all across 3 agents, until every run was reverted (controller process included): \(took)")
            #expect(abortExit == 0, "\(aborted)")
            #expect(aborted.split(separator: "\n").filter { $0.hasPrefix("host-") && $0.contains(" aborted ") }.count == 3, "\(aborted)")
            for index in setup.fleet.members.indices {
                let after = try await setup.fleet.connect(to: index, port: 8080, count: 3, timeout: 1)
                #expect(after.ok == 3, "member \(index) serves again: \(after)")
            }
            let runs = try await setup.runs()
            #expect(runs.count == 3 && runs.allSatisfy { $0["state"] as? String == "aborted" })
        }
    }

    @Test("agents found through DNS (dnsmasq answering one name with three addresses, as a headless Service does): submit, status and abort --all reach all three; a name without addresses exits 3")
    func discoveredThroughDNS() async throws {
        guard let dnsmasq = ["/usr/sbin/dnsmasq", "/usr/bin/dnsmasq"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("skipped: agents found through DNS: no dnsmasq (apt-get install dnsmasq-base)")
            return
        }
        let name = "agents.flt-test.example"
        try await withFleet(dnsName: name) { setup in
            let addresses = setup.fleet.members.indices.map { TestFleet.address($0) }
            let dns = try await TestDNS.start(dnsmasq, namespace: setup.fleet.controller, directory: setup.directory,
                                              records: addresses.map { ($0, name) } + [(addresses[0], "other.flt-test.example")])
            defer { dns.stop() }
            let agents = "dns:\(name):7465"
            let file = try setup.scenario("fleet-dns")
            let (exit, output) = try await setup.controller(["submit", file], agents: agents)
            #expect(exit == 0, "\(output)")
            for address in addresses {
                #expect(output.contains("\(address):7465") && output.components(separatedBy: " running ").count - 1 == 3, "\(output)")
            }
            _ = try await setup.waitForFaults("fleet-dns", state: "active")
            let (statusExit, status) = try await setup.controller(["status", "-o", "json"], agents: agents)
            #expect(statusExit == 0, "\(status)")
            let object = try JSONSerialization.jsonObject(with: Data((status.split(separator: "\n").last ?? "").utf8)) as? [String: Any]
            let entries = object?["agents"] as? [[String: Any]] ?? []
            #expect(Set(entries.compactMap { $0["address"] as? String }) == Set(addresses), "\(status)")
            #expect(entries.allSatisfy { $0["url"] as? String == "https://\(name):7465" }, "\(status)")
            let (abortExit, aborted) = try await setup.controller(["abort", "--all"], agents: agents)
            #expect(abortExit == 0, "\(aborted)")
            #expect(aborted.split(separator: "\n").filter { $0.hasPrefix("10.213.") && $0.contains(" aborted ") }.count == 3, "\(aborted)")
            for index in setup.fleet.members.indices {
                let after = try await setup.fleet.connect(to: index, port: 8080, count: 3, timeout: 1)
                #expect(after.ok == 3, "member \(index) serves again: \(after)")
            }
            let runs = try await setup.runs().filter { $0["scenario"] as? String == "fleet-dns" }
            #expect(runs.count == 3 && runs.allSatisfy { $0["state"] as? String == "aborted" }, "\(runs)")
            // A name the server does not know: nothing to reach, exit 3, and the name said.
            let (noneExit, none) = try await setup.controller(["status"], agents: "dns:nobody.flt-test.example:7465")
            #expect(noneExit == 3 && none.contains("dns:nobody.flt-test.example: no agent found"), "\(noneExit): \(none)")
            // The certificate is checked for the name: the same agent under a name its certificate does not list is refused.
            let (wrongExit, wrong) = try await setup.controller(["status"], agents: "dns:other.flt-test.example:7465")
            #expect(wrongExit == 3 && wrong.contains("certificate"), "exit \(wrongExit): \(wrong)")
        }
    }

    @Test("the controller holding a lease is killed with SIGKILL: each agent reverts within lease + 1 s")
    func leaseOutlivesNoController() async throws {
        try await withFleet { setup in
            let file = try setup.scenario("fleet-lease")
            let (controller, log) = try setup.startController(["submit", file, "--lease", "2s"])
            _ = try await setup.waitForFaults("fleet-lease", state: "active")
            let killedAt = Date()
            _ = try ProcessSignaller().send(.kill, to: controller)
            _ = await ChildProcess.waitForExit(controller.pid)
            _ = try await setup.waitForFaults("fleet-lease", state: "reverted", timeout: .seconds(10))
            var runs: [[String: Any]] = []
            for _ in 0..<100 {
                runs = try await setup.runs().filter { $0["scenario"] as? String == "fleet-lease" }
                if runs.allSatisfy({ $0["state"] as? String == "aborted" }) { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            for run in runs {
                #expect(run["state"] as? String == "aborted")
                #expect((run["reason"] as? String)?.hasPrefix("the controller's lease expired") == true, "\(run)")
                let revertedText = (run["faults"] as? [[String: Any]])?.first?["revertedAt"] as? String
                let reverted = try #require(revertedText.flatMap { APIDate.parse($0) })
                let after = reverted.timeIntervalSince(killedAt)
                print("lease 2s: run \(run["id"] ?? "?") reverted \(String(format: "%.3f", after)) s after the controller's SIGKILL")
                #expect(after < 3.0, "within lease + 1 s")
            }
            #expect(!((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").isEmpty, "the controller printed its table before it was killed")
            for index in setup.fleet.members.indices {
                let after = try await setup.fleet.connect(to: index, port: 8080, count: 3, timeout: 1)
                #expect(after.ok == 3, "member \(index) serves again: \(after)")
            }
        }
    }

    @Test("the controller's terminal goes away (SIGHUP, a dropped SSH session): it aborts every run it started and waits for their reverts, exit 130")
    func hangupAbortsTheRuns() async throws {
        try await withFleet { setup in
            let file = try setup.scenario("fleet-hangup")
            let (controller, log) = try setup.startController(["submit", file, "--lease", "30s"])
            _ = try await setup.waitForFaults("fleet-hangup", state: "active")
            _ = try ProcessSignaller().send(try Signal(parsing: "SIGHUP"), to: controller)
            #expect(await waitForExit(controller.pid) == 130, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            let runs = try await setup.runs().filter { $0["scenario"] as? String == "fleet-hangup" }
            #expect(runs.count == 3 && runs.allSatisfy { $0["state"] as? String == "aborted" && ($0["reason"] as? String)?.contains("controller") == true }, "\(runs)")
            #expect(((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("interrupted: aborting the runs on the agents"))
        }
    }
}
