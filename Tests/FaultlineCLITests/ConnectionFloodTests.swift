import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Thousands of idle, unauthenticated connections to the agent: its open-file limit is raised, its connections are
/// capped short of it, and a revert always finds the descriptors it needs.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces && Privilege.hasTool("prlimit") && Privilege.hasTool("python3"),
                             "needs root, ip, iptables, nsenter, prlimit and python3"))
struct ConnectionFloodTests {
    static let token = "flood-test-token-\(UInt64.random(in: 0 ... .max))-0123456789"

    /// Opens `count` TCP connections to `address` and holds them, idle, until it is killed; prints `open N` when done.
    static let flood = """
        import resource, socket, sys, time
        host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        import selectors
        held = []
        pending = selectors.DefaultSelector()
        for _ in range(count):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex((host, port))
            held.append(s)
            pending.register(s, selectors.EVENT_WRITE)
        # Wait until the handshakes are done (or 8 s: past a full listen queue some never are).
        established, deadline = 0, time.time() + 8
        while established < count and time.time() < deadline:
            for key, _ in pending.select(timeout=0.5):
                pending.unregister(key.fileobj)
                established += 1
        print("open %d established %d" % (len(held), established), flush=True)
        time.sleep(120)
        """

    struct Flood {
        let process: ProcessIdentity
        func stop() async {
            _ = try? ProcessSignaller().send(.kill, to: process)
            _ = await ChildProcess.waitForExit(process.pid)
        }
    }

    func startFlood(to url: String, count: Int, directory: String) async throws -> Flood {
        let address = url.replacingOccurrences(of: "http://", with: "").split(separator: ":")
        try Self.flood.write(toFile: directory + "/flood.py", atomically: true, encoding: .utf8)
        let output = directory + "/flood.out"
        let process = try ChildProcess.spawn(["/usr/bin/python3", directory + "/flood.py", String(address[0]), String(address[1]), "\(count)"],
                                             table: ProcessTable(), output: output)
        for _ in 0..<600 {
            if ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").contains("open ") { return Flood(process: process) }
            try await Task.sleep(for: .milliseconds(50))
        }
        _ = try? ProcessSignaller().send(.kill, to: process)
        throw TestFailure("the flood did not open its connections: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
    }

    /// This process's hard limit on open files (raising it needs CAP_SYS_RESOURCE).
    static var hardLimit: Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return Int(min(limit.rlim_max, 1 << 20))
    }

    @Test("5,000 idle connections with systemd's default soft limit (1024) under a higher hard limit: an abort with the token answers within 1 s, the agent stays up",
          .enabled(if: hardLimit >= 8_192, "needs a hard open-file limit of at least 8192 here (ulimit -Hn)"))
    func abortAnswersDuringAFlood() async throws {
        let directory = try makeTestDirectory("flood")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let target = try sleepers.start()
        try await withTestAgent(directory: directory, state: directory + "/state", token: Self.token,
                                wrapper: ["/usr/bin/prlimit", "--nofile=1024:\(Self.hardLimit)", "--"]) { agent in
            let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("flooded", faults: pauseFault("freeze", sleepers: sleepers)))
            let id = try #require(created.json["id"] as? String, "\(created.body)")
            _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            let flood = try await startFlood(to: agent.url, count: 5_000, directory: directory)
            // A new connection, as `faultline abort` makes one.
            let started = ContinuousClock.now
            let aborted = try await SubprocessRunner().run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", "-X", "POST",
                                                            "-H", "Authorization: Bearer \(Self.token)", "\(agent.url)/v1/runs/\(id)/abort"],
                                                           timeout: .seconds(15), outputLimit: 1 << 16)
            let took = ContinuousClock.now - started
            await flood.stop()
            #expect(aborted.standardOutput == "200", "\(aborted.standardOutput) \(aborted.standardError)")
            #expect(took < .seconds(1), "the abort took \(took) with 5,000 idle connections open")
            _ = try await agent.waitForRun(id) { ($0["state"] as? String) == "aborted" }
            #expect(sleepers.state(target) == "S")
            #expect(ProcessTable().isAlive(agent.child), "the agent is still up: \(agent.output)")
            print("abort answered in \(took) with 5,000 idle connections open")
        }
    }

    @Test("a flood past a low hard limit (512): connections are capped, the run's revert (commands with pipes) still works, the agent stays up")
    func revertFindsDescriptorsDuringAFlood() async throws {
        let directory = try makeTestDirectory("flood")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let namespace = try await TestNamespace.create(address: "10.213.0.1/24", chatter: true)
        do {
            try await withTestAgent(directory: directory, state: directory + "/state", token: Self.token,
                                    wrapper: ["/usr/bin/prlimit", "--nofile=512:512", "--"]) { agent in
                let fault = "    - {name: cut, type: drop, duration: 3s, to: {hosts: [10.213.0.2], ports: [9], protocol: tcp}}"
                let created = try await agent.call(.POST, "/v1/runs", body: agentScenario("flooded-drop", target: namespace.name, faults: fault))
                let id = try #require(created.json["id"] as? String, "\(created.body)")
                _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
                let flood = try await startFlood(to: agent.url, count: 2_000, directory: directory)
                // The fault ends by itself at 3 s; its revert runs iptables through nsenter (pipes) during the flood.
                var gone = false
                for _ in 0..<100 where !gone {
                    try await Task.sleep(for: .milliseconds(100))
                    gone = try await namespace.inside(["iptables", "-S"]).standardOutput.split(separator: "\n").allSatisfy { !$0.hasPrefix("-N FAULTLINE") }
                }
                #expect(ProcessTable().isAlive(agent.child), "the agent is still up: \(agent.output)")
                await flood.stop()
                #expect(gone, "the drop was reverted during the flood")
                let final = try await agent.waitForRun(id, timeout: .seconds(20)) { ["succeeded", "failed", "aborted", "deviated"].contains($0["state"] as? String ?? "") }
                #expect(final["state"] as? String == "succeeded", "\(final)")
            }
        } catch {
            await namespace.remove()
            throw error
        }
        await namespace.remove()
    }
}
