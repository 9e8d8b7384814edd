@testable import FaultlineProbes
import FaultlineCore
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What an HTTP probe says when the service does not answer, in words, on loopback: a refused connection at once, a
/// server that accepts but never answers after the probe's own timeout ("timed out after 300ms"), never a library's
/// error dump.
@Suite struct HTTPProbeErrorTests {
    func probe(_ url: String, timeout: TimeSpan) -> Probe {
        Probe(name: try! ResourceName(parsing: "web"), check: .http(HTTPCheck(url: url, timeout: timeout)))
    }

    @Test("a refused connection is a bad result at once, whatever the timeout")
    func refusedAtOnce() async throws {
        let port = try freeLoopbackPort()
        let started = ContinuousClock.now
        let outcome = await ProbeExecutor().checkHere(probe("http://127.0.0.1:\(port)/health", timeout: .seconds(5)))
        #expect(!outcome.ok && outcome.detail == "connection refused", "\(outcome)")
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test("a server that takes the connection and never answers: 'timed out after 300ms', after about that long")
    func silentServerTimesOutInWords() async throws {
        // A listening socket nobody accepts on: the kernel completes the handshake, nothing ever answers.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(bound == 0 && listen(fd, 16) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        let port = Int(UInt16(bigEndian: address.sin_port))
        let started = ContinuousClock.now
        let outcome = await ProbeExecutor().checkHere(probe("http://127.0.0.1:\(port)/health", timeout: .milliseconds(300)))
        let elapsed = ContinuousClock.now - started
        #expect(!outcome.ok && outcome.detail == "timed out after 300ms", "\(outcome)")
        #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(2), "\(elapsed)")
    }
}
