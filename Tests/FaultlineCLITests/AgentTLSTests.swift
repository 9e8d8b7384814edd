import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// The agent over HTTPS (docs/agent.md, Trust model): real TLS handshakes between `faultline agent` and the
/// controller commands, with certificates the test makes with openssl — server authentication with --ca-file,
/// mutual TLS with --tls-client-ca, a renewed certificate served without a restart, and plain HTTP refused off
/// loopback. Everything listens on 127.0.0.1.
@Suite(.serialized, .enabled(if: Privilege.hasTool("openssl"), "needs openssl to make the test's certificates"))
struct AgentTLSTests {
    static let token = String(repeating: "t", count: 40)

    func withPKI(_ tag: String, _ body: (TestPKI) async throws -> Void) async throws {
        let directory = try makeTestDirectory(tag)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await body(try await TestPKI.make(directory))
    }

    /// `faultline ARGS --token-file F` as a child process: exit code and output.
    func faultline(_ arguments: [String], pki: TestPKI) async throws -> (exit: Int32, output: String) {
        let tokenFile = pki.path("controller-token")
        if !FileManager.default.fileExists(atPath: tokenFile) {
            _ = FileManager.default.createFile(atPath: tokenFile, contents: Data(Self.token.utf8), attributes: [.posixPermissions: 0o600])
        }
        let result = try await SubprocessRunner().run([TestPaths.faultline] + arguments + ["--token-file", tokenFile],
                                                      timeout: .seconds(30), outputLimit: 1 << 20)
        return (result.exitCode, result.standardOutput + result.standardError)
    }

    /// Runs `body` with an HTTPS agent (stopped afterwards, also on a failure; it must exit 0).
    func withTLSAgent(_ pki: TestPKI, extra: [String] = [], _ body: (TestAgent) async throws -> Void) async throws {
        try await withTestAgent(directory: pki.directory, state: pki.path("state"), token: Self.token,
                                extra: pki.agentOptions + extra, body)
    }

    @Test("HTTPS: the controller trusts the agent only through --ca-file (a real handshake); no CA, another CA, another host name or http:// fail with the reason, exit 3")
    func serverAuthentication() async throws {
        try await withPKI("tls-server") { pki in
            try await withTLSAgent(pki) { agent in
                #expect(agent.url.hasPrefix("https://127.0.0.1:"), "the agent says it serves HTTPS: \(agent.output)")
                let port = agent.url.split(separator: ":").last.map(String.init) ?? ""

                let trusted = try await faultline(["list", "--agent", agent.url, "--ca-file", pki.path("ca.pem")], pki: pki)
                #expect(trusted.exit == 0, "\(trusted.output)")

                let untrusted = try await faultline(["list", "--agent", agent.url], pki: pki)
                #expect(untrusted.exit == 3)
                #expect(untrusted.output.contains("its TLS certificate is not trusted (pass --ca-file"), "\(untrusted.output)")

                let rogue = try await faultline(["list", "--agent", agent.url, "--ca-file", pki.path("rogue-ca.pem")], pki: pki)
                #expect(rogue.exit == 3)
                #expect(rogue.output.contains("not trusted"), "\(rogue.output)")

                let plain = try await faultline(["list", "--agent", "http://127.0.0.1:\(port)"], pki: pki)
                #expect(plain.exit == 3)
                #expect(plain.output.contains("use an https:// URL"), "\(plain.output)")

                // The health check sends no secret and does not check the certificate unless asked.
                let health = try await SubprocessRunner().run([TestPaths.faultline, "health", "--url", agent.url], timeout: .seconds(20), outputLimit: 1 << 16)
                #expect(health.exitCode == 0, "\(health.standardError)")
                let checked = try await SubprocessRunner().run([TestPaths.faultline, "health", "--url", agent.url, "--ca-file", pki.path("rogue-ca.pem")],
                                                               timeout: .seconds(20), outputLimit: 1 << 16)
                #expect(checked.exitCode == 1, "with --ca-file the certificate is checked")
            }
            // The name is checked too: a certificate from the trusted CA, but for another host, is refused.
            try await pki.issue("elsewhere", by: "ca", names: "DNS:elsewhere.test")
            try await withTestAgent(directory: pki.directory, state: pki.path("state-elsewhere"), token: Self.token,
                                    extra: ["--tls-cert", pki.path("elsewhere.pem"), "--tls-key", pki.path("elsewhere.key")]) { agent in
                let otherName = try await faultline(["list", "--agent", agent.url, "--ca-file", pki.path("ca.pem")], pki: pki)
                #expect(otherName.exit == 3)
                #expect(otherName.output.contains("its TLS certificate is not for the host name of this URL"), "\(otherName.output)")
            }
        }
    }

    @Test("mutual TLS: with --tls-client-ca a controller without a client certificate, or with one from another CA, is refused; with its certificate it gets in")
    func mutualTLS() async throws {
        try await withPKI("tls-mutual") { pki in
            try await withTLSAgent(pki, extra: ["--tls-client-ca", pki.path("client-ca.pem")]) { agent in
                let base = ["list", "--agent", agent.url, "--ca-file", pki.path("ca.pem")]

                let anonymous = try await faultline(base, pki: pki)
                #expect(anonymous.exit == 3, "\(anonymous.output)")
                #expect(anonymous.output.contains("--client-cert"), "the reason says what to pass: \(anonymous.output)")

                let rogue = try await faultline(base + ["--client-cert", pki.path("rogue-client.pem"), "--client-key", pki.path("rogue-client.key")], pki: pki)
                #expect(rogue.exit == 3, "a client certificate from a CA the agent does not trust: \(rogue.output)")

                let known = try await faultline(base + ["--client-cert", pki.path("client.pem"), "--client-key", pki.path("client.key")], pki: pki)
                #expect(known.exit == 0, "\(known.output)")

                let mismatched = try await faultline(base + ["--client-cert", pki.path("client.pem"), "--client-key", pki.path("rogue-client.key")], pki: pki)
                #expect(mismatched.exit == 2)
                #expect(mismatched.output.contains("--client-key '\(pki.path("rogue-client.key"))' is not the private key of the certificate"), "\(mismatched.output)")
            }
        }
    }

    @Test("a renewed certificate is served from the next connection on, without a restart; a half-done renewal (a key that does not fit) keeps the old one")
    func certificateReload() async throws {
        try await withPKI("tls-reload") { pki in
            try await withTLSAgent(pki) { agent in
                let port = Int(agent.url.split(separator: ":").last ?? "") ?? 0
                #expect(try await pki.servedSerial(port: port) == "1001")

                // Step one of a renewal: only the certificate is new. Its key is not the served one: the old pair stays.
                try await pki.issue("renewed", by: "ca", names: "IP:127.0.0.1,DNS:localhost", serial: "0x2002")
                try FileManager.default.removeItem(atPath: pki.path("agent.pem"))
                try FileManager.default.copyItem(atPath: pki.path("renewed.pem"), toPath: pki.path("agent.pem"))
                #expect(try await pki.servedSerial(port: port) == "1001")
                let list = try await faultline(["list", "--agent", agent.url, "--ca-file", pki.path("ca.pem")], pki: pki)
                #expect(list.exit == 0, "the agent still serves with the old pair: \(list.output)")

                // Step two: the key follows; the new pair is served.
                try FileManager.default.removeItem(atPath: pki.path("agent.key"))
                try FileManager.default.copyItem(atPath: pki.path("renewed.key"), toPath: pki.path("agent.key"))
                #expect(try await pki.servedSerial(port: port) == "2002")
                let renewed = try await faultline(["list", "--agent", agent.url, "--ca-file", pki.path("ca.pem")], pki: pki)
                #expect(renewed.exit == 0, "\(renewed.output)")
                #expect(agent.output.contains("cannot be used, so the previous one is still served"), "\(agent.output)")
                #expect(agent.output.contains("serving the renewed TLS certificate"), "\(agent.output)")
            }
        }
    }

    @Test("refused at start, nothing served: plain HTTP off loopback without --insecure-http, a key that is not the certificate's, a missing file")
    func refusals() async throws {
        try await withPKI("tls-refusals") { pki in
            let cases: [([String], String)] = [
                (["--listen", "0.0.0.0:0"], "refusing to serve plain HTTP on 0.0.0.0: anyone on the path could read the bearer token; pass --tls-cert and --tls-key"),
                (["--listen", "127.0.0.1:0", "--tls-cert", pki.path("agent.pem"), "--tls-key", pki.path("client.key")],
                 "--tls-key '\(pki.path("client.key"))' is not the private key of the certificate in '\(pki.path("agent.pem"))'"),
                (["--listen", "127.0.0.1:0", "--tls-cert", pki.path("missing.pem"), "--tls-key", pki.path("agent.key")],
                 "cannot read --tls-cert '\(pki.path("missing.pem"))': No such file or directory"),
                (["--listen", "127.0.0.1:0", "--tls-cert", pki.path("agent.pem"), "--tls-key", pki.path("agent.key"), "--tls-client-ca", pki.path("agent.key")],
                 "--tls-client-ca '\(pki.path("agent.key"))' holds no PEM certificate"),
                (["--listen", "127.0.0.1:0", "--tls-cert", pki.path("agent.pem")], "--tls-cert and --tls-key go together"),
            ]
            for (arguments, message) in cases {
                let result = try await faultline(["agent", "--state-dir", pki.path("state")] + arguments, pki: pki)
                #expect(result.exit == 2, "\(arguments): \(result.output)")
                #expect(result.output.contains(message), "\(arguments): \(result.output)")
            }
            #expect(!FileManager.default.fileExists(atPath: pki.path("state/journal.sqlite")), "nothing was started")
        }
    }
}
