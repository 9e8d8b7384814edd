import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The userspace nfqueue engine for real: `faultline run` with `engine: nfqueue` between two namespaces
/// joined by veth (client A 10.213.1.1, server B 10.213.1.2), measured with real TCP handshakes and pings.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces && Privilege.hasTool("python3") && Privilege.hasTool("ping"),
                             "needs root, ip, iptables, nsenter, python3 and ping"))
struct NFQueueEngineTests {
    typealias Net = TestNetwork

    struct Setup {
        let net: TestNetwork
        let directory: String
        var state: String { directory + "/state" }

        /// Writes a scenario whose faults act in namespace `target`.
        func file(_ name: String, target: String, faults: String) throws -> String {
            let path = "\(directory)/\(name).yaml"
            try """
                apiVersion: faultline/v1
                kind: Scenario
                metadata: {name: \(name)}
                spec:
                  maxDuration: 2m
                  target: {netns: \(target)}
                  faults:
                \(faults)
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        /// Starts `faultline run FILE` inside namespace A and waits until the fault is injected (its chain in `target`).
        /// With `dropping`, the run has that capability neither effective nor in its bounding set (capsh).
        func startRun(_ file: String, target: String, dropping capability: String? = nil) async throws -> (ProcessIdentity, log: String) {
            let log = "\(directory)/run-\(UInt32.random(in: 0 ... .max)).log"
            let faultline = capability.map { ["/usr/sbin/capsh", "--drop=\($0)", "--shell=\(TestPaths.faultline)", "--"] } ?? [TestPaths.faultline]
            let argv = ["/usr/sbin/ip", "netns", "exec", net.a] + faultline + ["run", file, "--yes", "--state-dir", state]
            let runner = try ChildProcess.spawn(argv, table: ProcessTable(), output: log)
            for _ in 0..<500 {
                let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                if said.contains("injected:"), try await !chains(in: target).isEmpty { return (runner, log) }
                if !ProcessTable().isAlive(runner) { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            _ = try? ProcessSignaller().send(.kill, to: runner)
            _ = await ChildProcess.waitForExit(runner.pid)
            throw TestFailure("the fault did not come up: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }

        /// Runs `body` while `faultline run FILE` has its fault in place in `target`, then stops the runner
        /// (SIGTERM: it reverts), also when `body` throws; returns what `body` gave, the exit code and the output.
        func whileInjected<T>(_ file: String, target: String, dropping capability: String? = nil,
                              _ body: () async throws -> T) async throws -> (T, exit: Int32, output: String) {
            let (runner, log) = try await startRun(file, target: target, dropping: capability)
            let result: T
            do {
                result = try await body()
            } catch {
                _ = await stop(runner, log: log)
                throw error
            }
            let (exit, output) = await stop(runner, log: log)
            return (result, exit, output)
        }

        /// Stops the runner with SIGTERM (it reverts) and returns its exit code and output.
        func stop(_ runner: ProcessIdentity, log: String) async -> (Int32, String) {
            _ = try? ProcessSignaller().send(.term, to: runner)
            let exit = await ChildProcess.waitForExit(runner.pid)
            return (exit, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }

        /// Faultline's mangle chains in `namespace`, IPv4 and IPv6.
        func chains(in namespace: String) async throws -> [String] {
            var result: [String] = []
            for tool in ["iptables", "ip6tables"] {
                result += try await net.must(["ip", "netns", "exec", namespace, tool, "-w", "5", "-t", "mangle", "-S"]).standardOutput
                    .split(separator: "\n").filter { $0.hasPrefix("-N FAULTLINE") }.map { String($0.dropFirst(3)) }
            }
            return result
        }

        /// `count` pings from A to B, 2 ms apart: ping's summary line ("600 packets transmitted, 413 received, ...").
        func pings(_ count: Int) async throws -> String {
            let ping = try await net.must(["ip", "netns", "exec", net.a, "ping", "-q", "-n", "-c", "\(count)", "-i", "0.002", "-W", "1", Net.addressB])
            return ping.standardOutput.split(separator: "\n").first { $0.contains("packets transmitted") }.map(String.init) ?? ping.standardOutput
        }

        /// Echo requests sent and the share of them with no answer, in percent, from ping's summary line.
        static func loss(_ summary: String) -> (sent: Int, percent: Double) {
            let numbers = summary.split(separator: " ").compactMap { Int($0) }
            let sent = numbers.first ?? 0, received = numbers.dropFirst().first ?? 0
            return (sent, Double(sent - received) / Double(max(sent, 1)) * 100)
        }

        /// The round-trip time of every echo reply of `count` pings from A to B, 2 ms apart, in milliseconds.
        func pingTimes(_ count: Int) async throws -> (sent: Int, times: [Double]) {
            let ping = try await net.must(["ip", "netns", "exec", net.a, "ping", "-n", "-c", "\(count)", "-i", "0.002", "-W", "1", Net.addressB])
            let times = ping.standardOutput.split(separator: "\n").compactMap { line in
                line.firstMatch(of: /icmp_seq=\d+ ttl=\d+ time=([0-9.]+) ms/).flatMap { Double($0.1) }
            }
            return (count, times)
        }

        func handshakes(port: Int = 8080, count: Int = 50, timeout: Double = 2) async throws -> HandshakeTimes {
            try await net.handshakes(from: net.a, to: Net.addressB, port: port, count: count, timeout: timeout)
        }
    }

    func withSetup(_ body: (Setup) async throws -> Void) async throws {
        try await TestNetwork.with(serving: [8080: 0, 9090: 0, 8081: 2_000_000], directoryTag: "nfq") { net, directory in
            try await body(Setup(net: net, directory: directory))
        }
    }

    /// Delayer processes still alive (none may outlive its fault).
    static func delayers() -> [Int32] {
        ProcessTable().all().filter { $0.arguments.count > 2 && $0.arguments[1] == "delayer" }.map(\.pid)
    }

    @Test("the delayer killed while its latency is in place: traffic passes undelayed (fail-open), the fault is 'degraded' and the run inconclusive, exit 5")
    func aKilledDelayerIsNotReportedAsHeld() async throws {
        try await withSetup { setup in
            let file = try setup.file("killed-delayer", target: setup.net.b, faults: """
                    - {name: slow, type: latency, interface: eth0, delay: 100ms, engine: nfqueue, duration: 3s}
                """)
            let (runner, log) = try await setup.startRun(file, target: setup.net.b)
            let delayer = try #require(ProcessTable().all().first { $0.arguments.count > 2 && $0.arguments[1] == "delayer" })
            _ = try ProcessSignaller().send(.kill, to: delayer.identity)
            let after = try await setup.handshakes()
            #expect(after.medianMilliseconds < 50, "fail-open: undelayed once the delayer is gone: \(after.summary)")
            let exit = await ChildProcess.waitForExit(runner.pid)
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(exit == 5, "\(output)")
            #expect(output.contains("the fault did not fully act: the delayer ended while the fault was in place"), "\(output)")
            #expect(output.contains("inconclusive (exit 5)"), "\(output)")
            #expect(try await setup.chains(in: setup.net.b).isEmpty)
        }
    }

    @Test func latencyOnTheServerSideAddsItsDelayToTheHandshakeAndGoesAway() async throws {
        try await withSetup { setup in
            let baseline = try await setup.handshakes()
            let file = try setup.file("server-latency", target: setup.net.b, faults: """
                    - {name: slow, type: latency, interface: eth0, delay: 100ms, engine: nfqueue}
                """)
            let ((during, during6), exit, output) = try await setup.whileInjected(file, target: setup.net.b) {
                (try await setup.handshakes(), try await setup.net.handshakes(from: setup.net.a, to: Net.address6B, port: 8080, count: 10))
            }
            let after = try await setup.handshakes()
            print("latency 100ms (nfqueue): baseline \(baseline.summary); during \(during.summary); after \(after.summary)")
            let added = during.medianMilliseconds - baseline.medianMilliseconds
            #expect(abs(added - 100) <= 10, "median handshake rose by \(added) ms")
            #expect(during.failed == 0 && during.times.count == 50)
            #expect(abs(during6.medianMilliseconds - baseline.medianMilliseconds - 100) <= 10, "IPv6 too: \(during6.summary)")
            #expect(after.medianMilliseconds < baseline.medianMilliseconds + 5, "back to the baseline after the revert")
            #expect(exit == 130, "\(output)")
            #expect(output.contains("delayer statistics: packets="), "\(output)")
            #expect(try await setup.chains(in: setup.net.b).isEmpty)
            #expect(Self.delayers().isEmpty, "no delayer outlives its fault")
        }
    }

    /// Packets the server makes are copied and sent again, not held: holding them would hold
    /// the socket's send buffer, and TCP's small-queue limit would cut a 2 MB download to a crawl
    /// (about 1 Mbit/s at 50 ms; 16 s for 2 MB).
    @Test func aDelayedServerStillSendsAtFullSpeed() async throws {
        try await withSetup { setup in
            let file = try setup.file("bulk", target: setup.net.b, faults: """
                    - {name: slow, type: latency, interface: eth0, delay: 50ms, engine: nfqueue}
                """)
            let (download, _, output) = try await setup.whileInjected(file, target: setup.net.b) {
                try await setup.net.download(from: setup.net.a, host: Net.addressB, port: 8081)
            }
            print(String(format: "2 MB from a server behind 50 ms (nfqueue): %.2f s; ", download.seconds) + (output.split(separator: "\n").first { $0.contains("delayer statistics") } ?? ""))
            #expect(download.bytes == 2_000_000)
            #expect(download.seconds < 2, "slow start over a 50 ms path, not a throttled sender")
            let resent = output.firstMatch(of: /resent=(\d+)/).flatMap { Int($0.1) } ?? 0
            #expect(resent > 1_000, "the server's packets went out as copies: \(output)")
        }
    }

    /// Beyond its limit the delayer lets packets pass undelayed, warns, and goes on (it used to crash
    /// on its first warning: an arithmetic overflow found by the benchmark).
    @Test func aFullQueueLetsTheRestPassUndelayedAndSaysSo() async throws {
        try await withSetup { setup in
            let net = setup.net
            let log = setup.directory + "/delayer.log"
            let delayer = try ChildProcess.spawn(["/usr/sbin/ip", "netns", "exec", net.a, TestPaths.faultline, "delayer", "--queue", "64998",
                                                  "--limit", "5", "--delay", "300ms", "--interface", "eth0", "--ignore-parent"],
                                                 table: ProcessTable(), output: log)
            defer {
                _ = try? ProcessSignaller().send(.kill, to: delayer)
                ChildProcess.reap(delayer.pid)
            }
            for _ in 0..<300 where !((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("ready") {
                try await Task.sleep(for: .milliseconds(10))
            }
            let iptables = ["ip", "netns", "exec", net.a, "iptables", "-w", "5", "-t", "mangle"]
            try await net.must(iptables + ["-A", "POSTROUTING", "-o", "eth0", "-m", "mark", "--mark", "0xfa17fa17", "-j", "ACCEPT"])
            try await net.must(iptables + ["-A", "POSTROUTING", "-o", "eth0", "-j", "NFQUEUE", "--queue-num", "64998", "--queue-bypass"])
            let ping = try await net.must(["ip", "netns", "exec", net.a, "ping", "-n", "-c", "40", "-i", "0.002", "-W", "1", Net.addressB])
            try await Task.sleep(for: .milliseconds(500))  // the held ones go at 300 ms, after ping has left
            _ = try ProcessSignaller().send(.term, to: delayer)
            let exit = await ChildProcess.waitForExit(delayer.pid)
            let said = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            let times = ping.standardOutput.matches(of: /time=([\d.]+) ms/).compactMap { Double($0.1) }
            print("40 pings through a delayer holding at most 5 for 300 ms: \(times.filter { $0 < 50 }.count) answered at once; \(said.split(separator: "\n").last ?? "")")
            #expect(times.filter { $0 < 50 }.count >= 30, "beyond the limit packets pass undelayed: \(ping.standardOutput)")
            #expect(said.contains("delayed=5 ") && said.contains("resent=5 "), "the queue held its limit and sent those on: \(said)")
            #expect(!said.contains("late-max-us=0"), "at their time, not at the stop: \(said)")
            #expect(said.contains("warning: the delay queue is full (5 packets held)"), "\(said)")
            #expect(exit == 0 && said.contains("stats: ") && !said.contains("passed-full=0 "), "\(said)")
        }
    }

    /// Without CAP_NET_RAW no copy can be sent: the delayer says so (a line it prints before it is ready,
    /// which reaches the run's log) and holds the packets instead; the delay is still there.
    @Test(.enabled(if: Privilege.hasTool("capsh"), "needs capsh to drop CAP_NET_RAW"))
    func withoutNetRawTheDelayerHoldsPacketsAndSaysSo() async throws {
        try await withSetup { setup in
            let baseline = try await setup.handshakes(count: 20)
            let file = try setup.file("no-raw", target: setup.net.a, faults: """
                    - {name: slow, type: latency, interface: eth0, delay: 100ms, engine: nfqueue}
                """)
            let (during, _, output) = try await setup.whileInjected(file, target: setup.net.a, dropping: "cap_net_raw") {
                try await setup.handshakes(count: 20)
            }
            print("latency 100ms without CAP_NET_RAW: \(during.summary)")
            #expect(abs(during.medianMilliseconds - baseline.medianMilliseconds - 100) <= 10)
            #expect(output.contains("delayer: cannot open a raw IPv4 socket on 'eth0': Operation not permitted; packets made here are held"), "\(output)")
            #expect(output.contains("resent=0 "), "\(output)")
        }
    }

    @Test func jitterSpreadsTheDelayWithinItsBounds() async throws {
        try await withSetup { setup in
            let baseline = try await setup.handshakes()
            let file = try setup.file("jitter", target: setup.net.b, faults: """
                    - {name: shaky, type: latency, interface: eth0, delay: 100ms, jitter: 20ms, engine: nfqueue}
                """)
            let (during, _, _) = try await setup.whileInjected(file, target: setup.net.b) {
                try await setup.handshakes(count: 80)
            }
            print("latency 100ms ± 20ms (nfqueue): baseline \(baseline.summary); during \(during.summary)")
            let base = baseline.medianMilliseconds
            // Uniform in [80, 120] ms: the middle 80% spans about 32 ms; nothing leaves the bounds.
            #expect(during.percentile(0.9) - during.percentile(0.1) >= 15, "the spread is visible")
            #expect((during.times.first ?? 0) * 1000 >= base + 78, "no handshake faster than delay - jitter")
            #expect((during.times.last ?? 1) * 1000 <= base + 130, "no handshake slower than delay + jitter (and 10 ms of scheduling)")
            #expect(abs(during.medianMilliseconds - base - 100) <= 10)
        }
    }

    @Test func packetLossOfThirtyPercentLosesThatShareOfPings() async throws {
        try await withSetup { setup in
            let file = try setup.file("loss", target: setup.net.a, faults: """
                    - {name: lossy, type: packet-loss, interface: eth0, percent: 30%, engine: nfqueue}
                """)
            let (summary, _, output) = try await setup.whileInjected(file, target: setup.net.a) {
                try await setup.pings(600)
            }
            let (sent, loss) = Setup.loss(summary)
            print("packet-loss 30% (nfqueue): \(summary)")
            #expect(sent == 600)
            #expect(abs(loss - 30) <= 6, "lost \(loss)% of \(sent) echo requests")
            #expect(output.contains("dropped="), "\(output)")
            let after = try await setup.pings(50)
            #expect(after.contains(" 0% packet loss"), "no loss after the revert: \(after)")
        }
    }

    @Test func duplicateOfTwentyPercentSendsThatShareTwice() async throws {
        try await withSetup { setup in
            let file = try setup.file("twice", target: setup.net.a, faults: """
                    - {name: echo, type: duplicate, interface: eth0, percent: 20%}
                """)
            let (summary, _, output) = try await setup.whileInjected(file, target: setup.net.a) {
                try await setup.pings(600)
            }
            let duplicates = summary.firstMatch(of: /\+(\d+) duplicates/).flatMap { Int($0.1) } ?? 0
            print("duplicate 20% (nfqueue): \(summary)")
            #expect(summary.hasPrefix("600 packets transmitted, 600 received"), "\(summary)")
            #expect(abs(Double(duplicates) / 6 - 20) <= 5, "\(duplicates) of 600 echo requests sent twice")
            #expect(output.contains("duplicated="), "\(output)")
        }
    }

    @Test("corrupt 20% without sch_netem: one bit flipped after the IP header of that share of echo requests; B's ICMP checksum drops them, so about 20% of 2,000 pings get no answer")
    func corruptOfTwentyPercentIsCaughtByTheReceiversChecksum() async throws {
        try await withSetup { setup in
            let file = try setup.file("flip", target: setup.net.a, faults: """
                    - {name: bitrot, type: corrupt, interface: eth0, percent: 20%}
                """)
            let (summary, _, output) = try await setup.whileInjected(file, target: setup.net.a) {
                try await setup.pings(2000)
            }
            let (sent, lost) = Setup.loss(summary)
            print("corrupt 20% (nfqueue): \(summary)")
            #expect(sent == 2000)
            #expect(abs(lost - 20) <= 3, "\(lost)% of 2,000 echo requests got no answer")
            #expect(output.contains("corrupted="), "\(output)")
            let after = try await setup.pings(50)
            #expect(after.contains(" 0% packet loss"), "nothing corrupted after the revert: \(after)")
        }
    }

    @Test("reorder 25% without sch_netem: that share of 2,000 echo requests goes at once, ahead of the others that wait 20 ms (their replies overtake)")
    func reorderOfTwentyFivePercentSendsThatShareAtOnce() async throws {
        try await withSetup { setup in
            let file = try setup.file("shuffle", target: setup.net.a, faults: """
                    - {name: shuffle, type: reorder, interface: eth0, percent: 25%, delay: 20ms}
                """)
            let (ping, _, output) = try await setup.whileInjected(file, target: setup.net.a) {
                try await setup.pingTimes(2000)
            }
            let atOnce = ping.times.filter { $0 < 10 }.count
            let share = Double(atOnce) / Double(max(ping.times.count, 1)) * 100
            print("reorder 25% delay 20ms (nfqueue): \(ping.times.count) replies, \(atOnce) under 10 ms (\(String(format: "%.1f", share))%)")
            #expect(ping.times.count >= 1990, "every echo request is answered: \(ping.times.count)")
            // The decisions themselves are checked to ±3 points in DelayModelTests; here ±4, for what else shares the link.
            #expect(abs(share - 25) <= 4, "\(share)% went at once")
            #expect(ping.times.filter { $0 >= 10 }.allSatisfy { $0 >= 19 }, "the others waited the delay")
            #expect(output.contains("reordered="), "\(output)")
        }
    }

    @Test func onlyTheFilteredPortIsDelayed() async throws {
        try await withSetup { setup in
            let baseline = try await setup.handshakes(port: 9090, count: 30)
            let file = try setup.file("one-port", target: setup.net.a, faults: """
                    - {name: slow-db, type: latency, interface: eth0, delay: 100ms, engine: nfqueue, to: {ports: [8080], protocol: tcp}}
                """)
            let ((filtered, other), _, _) = try await setup.whileInjected(file, target: setup.net.a) {
                (try await setup.handshakes(port: 8080, count: 30), try await setup.handshakes(port: 9090, count: 30))
            }
            print("latency 100ms to port 8080 (nfqueue): 8080 \(filtered.summary); 9090 \(other.summary); baseline \(baseline.summary)")
            #expect(abs(filtered.medianMilliseconds - baseline.medianMilliseconds - 100) <= 10)
            #expect(other.medianMilliseconds < baseline.medianMilliseconds + 5, "other traffic keeps its baseline latency")
        }
    }

    @Test func aKilledRunnerFailsOpenAtOnceAndTheGuardRemovesTheRule() async throws {
        try await withSetup { setup in
            let file = try setup.file("killed", target: setup.net.a, faults: """
                    - {name: slow, type: latency, interface: eth0, delay: 200ms, engine: nfqueue}
                """)
            let (runner, _) = try await setup.startRun(file, target: setup.net.a)
            let slow = try await setup.handshakes(count: 3)
            #expect(slow.medianMilliseconds >= 190, "the fault is in place: \(slow.summary)")
            let delayersBefore = Self.delayers()
            #expect(delayersBefore.count == 1)
            kill(runner.pid, SIGKILL)
            let killed = ContinuousClock.now
            _ = await ChildProcess.waitForExit(runner.pid)
            // Bypass: with the delayer gone the kernel lets the packets through, before any cleanup.
            let right = try await setup.handshakes(count: 10, timeout: 1)
            let firstFast = ContinuousClock.now - killed
            print("after SIGKILL of the runner: \(right.summary) (measured within \(firstFast))")
            #expect(right.medianMilliseconds < 20, "traffic flows again at once")
            var gone = false
            while !gone, ContinuousClock.now - killed < .seconds(5) {
                gone = try await setup.chains(in: setup.net.a).isEmpty
                if !gone { try await Task.sleep(for: .milliseconds(10)) }
            }
            print("the guard removed the rules \(ContinuousClock.now - killed) after the kill")
            #expect(gone, "the guard removes the rule")
            #expect(Self.delayers().isEmpty, "the delayer died with its runner")
            let journal = try Journal(directory: setup.state)
            for _ in 0..<200 where try journal.runs().last?.state != .failed { try await Task.sleep(for: .milliseconds(10)) }
            #expect(try journal.pendingFaults().isEmpty)
        }
    }
}
