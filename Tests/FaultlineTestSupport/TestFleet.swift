import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A controller namespace joined by one veth pair to each of several member namespaces (one host each):
/// member i has 10.213.(21+i).2 on its eth0, the controller 10.213.(21+i).1. `remove()` undoes all of it.
public struct TestFleet: Sendable {
    public let controller: String
    public let members: [String]
    let servers = ServerSet()
    let script: String
    let runner = SubprocessRunner()

    /// Member `index`'s address, as the controller reaches it.
    public static func address(_ index: Int) -> String { "10.213.\(21 + index).2" }

    public static func create(count: Int = 3) async throws -> TestFleet {
        await TestNamespace.removeStale()
        let tag = "flt-test-\(getpid())-\(UInt16.random(in: 0 ... .max))"
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("\(tag)-netprobe.py").path
        try NetProbe.script.write(toFile: script, atomically: true, encoding: .utf8)
        let fleet = TestFleet(controller: tag + "c", members: (1...count).map { "\(tag)m\($0)" }, script: script)
        do {
            try await fleet.must(["ip", "netns", "add", fleet.controller])
            try await fleet.must(["ip", "-n", fleet.controller, "link", "set", "lo", "up"])
            for (index, member) in fleet.members.enumerated() {
                try await fleet.must(["ip", "netns", "add", member])
                try await fleet.must(["ip", "-n", fleet.controller, "link", "add", "v\(index)", "type", "veth", "peer", "name", "eth0", "netns", member])
                try await fleet.must(["ip", "-n", fleet.controller, "addr", "add", "10.213.\(21 + index).1/24", "dev", "v\(index)"])
                try await fleet.must(["ip", "-n", member, "addr", "add", "\(address(index))/24", "dev", "eth0"])
                try await fleet.must(["ip", "-n", fleet.controller, "link", "set", "v\(index)", "up"])
                try await fleet.must(["ip", "-n", member, "link", "set", "eth0", "up"])
                try await fleet.must(["ip", "-n", member, "link", "set", "lo", "up"])
            }
        } catch {
            await fleet.remove()
            throw error
        }
        return fleet
    }

    /// Starts an HTTP server on `port` in member `index` and waits until the controller reaches it.
    public func serve(member index: Int, port: Int) async throws {
        try servers.start(["/usr/sbin/ip", "netns", "exec", members[index], NetProbe.python, script, "serve", "\(port):100"])
        for _ in 0..<100 {
            if (try? await connect(to: index, port: port, count: 1, timeout: 0.2).ok) == 1 { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("test server on member \(index) port \(port) did not come up")
    }

    /// `count` HTTP GETs from the controller namespace to member `index`.
    public func connect(to index: Int, port: Int, count: Int, timeout: Double) async throws -> ConnectResult {
        let result = try await must(["ip", "netns", "exec", controller, NetProbe.python, script, "connect",
                                     Self.address(index), "\(port)", "\(count)", "\(timeout)", "5"])
        return try JSONDecoder().decode(ConnectResult.self, from: Data(result.standardOutput.utf8))
    }

    /// What Faultline may have left in a member: iptables chains and rules, tc qdiscs of its own.
    public func leftovers(member index: Int) async throws -> [String] {
        var found: [String] = []
        for tool in ["iptables", "ip6tables"] {
            let rules = try await must(["ip", "netns", "exec", members[index], tool, "-S"]).standardOutput
            found += rules.split(separator: "\n").map(String.init).filter { $0.contains("FAULTLINE") || $0.contains("faultline:") }
        }
        let qdiscs = try await must(["tc", "-n", members[index], "qdisc", "show"]).standardOutput
        found += qdiscs.split(separator: "\n").map(String.init).filter { $0.contains("fa17:") || $0.contains("fa18:") }
        return found
    }

    @discardableResult
    public func must(_ argv: [String]) async throws -> CommandResult {
        let result = try await runner.run(argv, timeout: .seconds(60), outputLimit: 8 << 20)
        guard result.succeeded else {
            throw TestFailure("'\(argv.joined(separator: " "))' exited \(result.exitCode): \(result.standardError)")
        }
        return result
    }

    public func remove() async {
        servers.stopAll()
        for namespace in members + [controller] { _ = try? await runner.run(["ip", "netns", "del", namespace]) }
        try? FileManager.default.removeItem(atPath: script)
    }
}
