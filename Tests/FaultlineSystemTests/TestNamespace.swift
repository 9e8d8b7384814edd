import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Whether this test process may change network namespaces, with the reason when not.
enum Privilege {
    static var isRoot: Bool { geteuid() == 0 }

    static func hasTool(_ name: String) -> Bool {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    static var canUseNamespaces: Bool { isRoot && ["ip", "tc", "iptables", "ip6tables", "nsenter"].allSatisfy(hasTool) }
}

/// A scratch network namespace with a veth pair (eth0 inside, its peer eth1 inside too), removed on `remove()`.
struct TestNamespace {
    let name: String
    let runner = SubprocessRunner()

    static func create() async throws -> TestNamespace {
        let namespace = TestNamespace(name: "flt-test-\(UInt32.random(in: 0 ... .max))")
        try await namespace.must(["ip", "netns", "add", namespace.name])
        do {
            try await namespace.must(["ip", "-n", namespace.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"])
            for device in ["lo", "eth0", "eth1"] {
                try await namespace.must(["ip", "-n", namespace.name, "link", "set", device, "up"])
            }
            try await namespace.must(["ip", "-n", namespace.name, "addr", "add", "10.213.0.1/24", "dev", "eth0"])
        } catch {
            await namespace.remove()
            throw error
        }
        return namespace
    }

    @discardableResult
    func must(_ argv: [String]) async throws -> CommandResult {
        let result = try await runner.run(argv)
        guard result.succeeded else {
            throw TestFailure("'\(argv.joined(separator: " "))' exited \(result.exitCode): \(result.standardError)")
        }
        return result
    }

    func inside(_ argv: [String]) async throws -> CommandResult {
        try await must(["ip", "netns", "exec", name] + argv)
    }

    func remove() async {
        _ = try? await runner.run(["ip", "netns", "del", name])
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
