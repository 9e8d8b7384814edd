import FaultlineCore
import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Whether this test process may change network namespaces, with the reason when not.
public enum Privilege {
    public static var isRoot: Bool { geteuid() == 0 }

    public static func hasTool(_ name: String) -> Bool {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
    }

    public static var canUseNamespaces: Bool { isRoot && ["ip", "tc", "iptables", "ip6tables", "nsenter"].allSatisfy(hasTool) }
}

/// A scratch network namespace `flt-test-<pid>-<n>` with a veth pair (eth0 inside, its peer eth1 inside too).
/// Namespaces left by test processes that died (a crash) are removed when the next one is made.
public struct TestNamespace {
    public let name: String
    public let runner = SubprocessRunner()

    /// `chatter`: with a steady stream of packets inside it (`startChatter`), for faults that must act on something.
    public static func create(address: String = "10.213.0.1/24", chatter: Bool = false) async throws -> TestNamespace {
        await removeStale()
        let namespace = TestNamespace(name: "flt-test-\(getpid())-\(UInt16.random(in: 0 ... .max))")
        try await namespace.must(["ip", "netns", "add", namespace.name])
        do {
            try await namespace.must(["ip", "-n", namespace.name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"])
            for device in ["lo", "eth0", "eth1"] {
                try await namespace.must(["ip", "-n", namespace.name, "link", "set", device, "up"])
            }
            try await namespace.must(["ip", "-n", namespace.name, "addr", "add", address, "dev", "eth0"])
            if chatter { try await namespace.startChatter() }
        } catch {
            await namespace.remove()
            throw error
        }
        return namespace
    }

    /// Removes `flt-test-<pid>-*` namespaces, and kills test servers, whose test process is gone (it crashed).
    public static func removeStale() async {
        for process in ProcessTable().all() where process.commandLine.contains("/flt-test-") && process.commandLine.contains("netprobe.py") {
            guard let marker = process.commandLine.range(of: "/flt-test-"),
                  let owner = Int32(process.commandLine[marker.upperBound...].prefix { $0.isNumber }),
                  kill(owner, 0) != 0, errno == ESRCH else { continue }
            _ = try? ProcessSignaller().send(.kill, to: process.identity)
        }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        for name in names where name.hasPrefix("flt-test-") {
            let parts = name.split(separator: "-")
            guard parts.count == 4, let pid = Int32(parts[2]), kill(pid, 0) != 0, errno == ESRCH else { continue }
            _ = try? await SubprocessRunner().run(["ip", "netns", "del", name])
        }
    }

    @discardableResult
    public func must(_ argv: [String]) async throws -> CommandResult {
        let result = try await runner.run(argv, timeout: .seconds(60), outputLimit: 8 << 20)
        guard result.succeeded else {
            throw TestFailure("'\(argv.joined(separator: " "))' exited \(result.exitCode): \(result.standardError)")
        }
        return result
    }

    public func inside(_ argv: [String]) async throws -> CommandResult {
        try await must(["ip", "netns", "exec", name] + argv)
    }

    /// Starts `argv` (whose process name is `processName`) in this namespace through `ip netns exec`, and waits until
    /// it runs there: `ip` enters the namespace, then becomes the program, keeping its pid.
    public func start(_ argv: [String], processName: String) async throws -> ProcessIdentity {
        let child = try ChildProcess.spawn(["/usr/sbin/ip", "netns", "exec", name] + argv, table: ProcessTable())
        let wanted = try NamespacePin.identity(of: "/run/netns/\(name)").get()
        for _ in 0..<200 {
            if case .success(let found) = NamespacePin.identity(of: "/proc/\(child.pid)/ns/net"), found == wanted,
               ProcessTable().read(child.pid)?.name == processName { return child }
            try await Task.sleep(for: .milliseconds(10))
        }
        _ = try? ProcessSignaller().send(.kill, to: child)
        _ = await ChildProcess.waitForExit(child.pid)
        throw TestFailure("'\(argv.joined(separator: " "))' did not come up in \(name)")
    }

    /// A low, steady stream of packets inside the namespace, so that a fault on it acts on something (its evidence):
    /// every 50 ms a TCP SYN to 10.213.0.2:9 and a UDP broadcast to 10.213.0.255:9 out of eth0 (the broadcast needs
    /// no neighbour, so it passes eth0's qdisc every time), and a UDP datagram out of eth1 (to 10.213.5.2, routed
    /// there). Nothing answers; nothing leaves the namespace.
    /// It ends with `remove()`, or by itself once the namespace or the test process is gone.
    public func startChatter() async throws {
        try await inside(["ip", "route", "replace", "10.213.5.0/24", "dev", "eth1"])
        let script = """
            import os, socket, sys, time
            name, parent = sys.argv[1], os.getppid()
            while os.path.exists("/run/netns/" + name) and os.getppid() == parent:
                for address, kind in ((("10.213.0.2", 9), socket.SOCK_STREAM), (("10.213.5.2", 9), socket.SOCK_DGRAM)):
                    s = socket.socket(socket.AF_INET, kind)
                    s.setblocking(False)
                    try:
                        s.connect(address) if kind == socket.SOCK_STREAM else s.sendto(b"x", address)
                    except OSError:
                        pass
                    s.close()
                # A broadcast needs no neighbour: it goes through eth0's qdisc every time.
                b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                b.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
                try:
                    b.sendto(b"x", ("10.213.0.255", 9))
                except OSError:
                    pass
                b.close()
                time.sleep(0.05)
            """
        _ = try ChildProcess.spawn(["/usr/sbin/ip", "netns", "exec", name, "python3", "-c", script, name, Self.chatterMarker], table: ProcessTable())
    }

    static let chatterMarker = "flt-test-chatter"

    public func remove() async {
        for process in ProcessTable().all() where process.arguments.contains(Self.chatterMarker) && process.arguments.contains(name) {
            _ = try? ProcessSignaller().send(.kill, to: process.identity)
            _ = await ChildProcess.waitForExit(process.pid)
        }
        _ = try? await runner.run(["ip", "netns", "del", name])
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
