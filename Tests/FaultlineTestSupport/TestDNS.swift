import FaultlineCore
import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A DNS server for tests: dnsmasq in a network namespace of the test's, on that namespace's loopback, answering from
/// a hosts file (several records of one name answer with every address, as a headless Service's name does), and the
/// namespace's /etc/netns/NAME/resolv.conf pointing at it (`ip netns exec` mounts it over /etc/resolv.conf).
/// `stop()` ends dnsmasq and removes the resolv.conf.
public final class TestDNS: Sendable {
    let process: ProcessIdentity
    let netnsDirectory: String
    /// Whether /etc/netns was made here (then it goes again once empty).
    let madeParent: Bool

    init(process: ProcessIdentity, netnsDirectory: String, madeParent: Bool) {
        self.process = process
        self.netnsDirectory = netnsDirectory
        self.madeParent = madeParent
    }

    /// Starts dnsmasq for `records` (address, name) in `namespace` and waits until the first name answers with all
    /// of its addresses there.
    public static func start(_ dnsmasq: String, namespace: String, directory: String, records: [(String, String)]) async throws -> TestDNS {
        let hosts = directory + "/dns-hosts"
        try records.map { "\($0.0) \($0.1)\n" }.joined().write(toFile: hosts, atomically: true, encoding: .utf8)
        let netnsDirectory = "/etc/netns/\(namespace)"
        let madeParent = !FileManager.default.fileExists(atPath: "/etc/netns")
        try FileManager.default.createDirectory(atPath: netnsDirectory, withIntermediateDirectories: true)
        try "nameserver 127.0.0.1\n".write(toFile: netnsDirectory + "/resolv.conf", atomically: true, encoding: .utf8)
        let process: ProcessIdentity
        do {
            process = try ChildProcess.spawn(["/usr/sbin/ip", "netns", "exec", namespace, dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
                                              "--no-resolv", "--no-hosts", "--addn-hosts=\(hosts)", "--listen-address=127.0.0.1",
                                              "--bind-interfaces", "--port=53", "--user=root", "--pid-file=\(directory)/dnsmasq.pid",
                                              "--log-facility=-"],
                                             table: ProcessTable(), output: directory + "/dnsmasq.log")
        } catch {
            try? FileManager.default.removeItem(atPath: netnsDirectory)
            if madeParent { rmdir("/etc/netns") }
            throw error
        }
        let dns = TestDNS(process: process, netnsDirectory: netnsDirectory, madeParent: madeParent)
        guard let name = records.first?.1 else { return dns }
        let wanted = Set(records.filter { $0.1 == name }.map(\.0))
        var last = ""
        for _ in 0..<100 {
            let answer = try? await SubprocessRunner().run(["ip", "netns", "exec", namespace, "getent", "ahostsv4", name],
                                                           timeout: .seconds(5), outputLimit: 1 << 16)
            last = answer?.standardOutput ?? ""
            if Set(last.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }) == wanted { return dns }
            try? await Task.sleep(for: .milliseconds(50))
        }
        dns.stop()
        throw TestFailure("dnsmasq in \(namespace) did not answer \(name) with \(wanted.sorted()): '\(last)'; log: \((try? String(contentsOfFile: directory + "/dnsmasq.log", encoding: .utf8)) ?? "")")
    }

    public func stop() {
        _ = try? ProcessSignaller().send(.kill, to: process)
        for _ in 0..<200 where !ChildProcess.reap(process.pid) { usleep(5_000) }
        try? FileManager.default.removeItem(atPath: netnsDirectory)
        if madeParent { rmdir("/etc/netns") }  // only when empty: another namespace's files stay
    }
}
