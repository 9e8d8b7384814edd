import AsyncHTTPClient
import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#endif

/// A real `faultline agent` process (optionally inside a network namespace), and HTTP calls to it.
struct TestAgent {
    let child: ProcessIdentity
    let log: String
    let url: String
    let token: String?

    /// Starts an agent and waits until it listens; `listen` with port 0 picks a free port; `wrapper` (e.g. unshare)
    /// starts the agent.
    static func start(directory: String, state: String, token: String? = nil, netns: String? = nil,
                      listen: String = "127.0.0.1:0", extra: [String] = [], wrapper: [String] = []) async throws -> TestAgent {
        var arguments = ["agent", "--listen", listen, "--state-dir", state] + extra
        if let token {
            let file = "\(directory)/token-\(UInt32.random(in: 0 ... .max))"
            _ = FileManager.default.createFile(atPath: file, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
            arguments += ["--token-file", file]
        }
        let log = "\(directory)/agent-\(UInt32.random(in: 0 ... .max)).log"
        let prefix = netns.map { ["/usr/sbin/ip", "netns", "exec", $0] } ?? []
        let child = try ChildProcess.spawn(prefix + wrapper + [TestPaths.faultline] + arguments, table: ProcessTable(), output: log)
        for _ in 0..<300 {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: "listening on ") {
                let url = text[range.upperBound...].prefix { !$0.isWhitespace && $0 != "\"" }
                // Started without one, the agent made a token and left it in its state directory.
                let made = token == nil ? (try? String(contentsOfFile: state + "/agent.token", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) : nil
                return TestAgent(child: child, log: log, url: String(url), token: token ?? made)
            }
            if ProcessTable().read(child.pid) == nil || ChildProcess.reap(child.pid) {
                throw TestFailure("the agent exited before it listened: \(text)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("the agent did not listen within 15 s: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }

    struct Answer {
        var status: Int
        var body: String
        var headers: HTTPHeaders
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    /// One request; `token` overrides the agent's token (nil sends none).
    func call(_ method: HTTPMethod, _ path: String, body: String? = nil, token: String?? = .none,
              headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: url + path)
        request.method = method
        let bearer: String? = switch token {
        case .none: self.token
        case .some(let given): given
        }
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let buffer = try await response.body.collect(upTo: 64 << 20)
        return Answer(status: Int(response.status.code), body: String(buffer: buffer), headers: response.headers)
    }

    /// Polls a run until `condition` holds on its JSON status (10 s at most).
    func waitForRun(_ id: String, timeout: Duration = .seconds(10), until condition: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = ContinuousClock.now + timeout
        var last: [String: Any] = [:]
        while ContinuousClock.now < deadline {
            last = try await call(.GET, "/v1/runs/\(id)").json
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw TestFailure("run \(id) did not reach the condition; last status: \(last)")
    }

    /// Sends a signal and waits for the agent to exit; its exit status.
    @discardableResult
    func stop(_ signal: FaultlineCore.Signal = .term) async -> Int32 {
        _ = try? ProcessSignaller().send(signal, to: child)
        return await ChildProcess.waitForExit(child.pid)
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// Waits for our child `pid` to exit, and kills it (SIGKILL) after `timeout`, so a failing test cannot hang.
func waitForExit(_ pid: Int32, killAfter timeout: Duration = .seconds(20)) async -> Int32 {
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        kill(pid, SIGKILL)
    }
    defer { watchdog.cancel() }
    return await ChildProcess.waitForExit(pid)
}

/// A fresh folder under the temporary directory, `faultline-cli-<tag>-<random>` (the leak check looks for these).
func makeTestDirectory(_ tag: String) throws -> String {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-cli-\(tag)-\(UInt32.random(in: 0 ... .max))").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
}

/// Runs `body` with an agent started for it; the agent is stopped also when `body` throws, and must exit 0 after it.
func withTestAgent(directory: String, state: String, token: String? = nil, extra: [String] = [], wrapper: [String] = [],
                   _ body: (TestAgent) async throws -> Void) async throws {
    let agent = try await TestAgent.start(directory: directory, state: state, token: token, extra: extra, wrapper: wrapper)
    do {
        try await body(agent)
    } catch {
        await agent.stop()
        throw error
    }
    let exit = await agent.stop()
    #expect(exit == 0, "the agent exits 0 on SIGTERM: \(agent.output)")
}

/// A scenario text for tests.
func agentScenario(_ name: String, maxDuration: String = "30s", target: String? = nil, steadyState: String = "", faults: String) -> String {
    """
    apiVersion: faultline/v1
    kind: Scenario
    metadata: {name: \(name)}
    spec:
      maxDuration: \(maxDuration)
    \(target.map { "  target: {netns: \($0)}\n" } ?? "")\(steadyState)  faults:
    \(faults)
    """
}

/// A fault that freezes the test's sleepers for `duration`.
func pauseFault(_ name: String, sleepers: TestSleepers, duration: String = "30s", start: String = "0s") -> String {
    """
        - name: \(name)
          type: pause-process
          start: \(start)
          duration: \(duration)
          match: {name: \(sleepers.name)}
    """
}

/// Certificates made with openssl for TLS tests, in a scratch folder: a CA, the agent's certificate for `agentNames`
/// (subjectAltName, e.g. `IP:127.0.0.1,DNS:localhost`), a client CA with one client, and a rogue CA with one client.
struct TestPKI {
    let directory: String
    func path(_ name: String) -> String { directory + "/" + name }

    /// The agent's options to serve HTTPS with these certificates.
    var agentOptions: [String] { ["--tls-cert", path("agent.pem"), "--tls-key", path("agent.key")] }

    static func make(_ directory: String, agentNames: String = "IP:127.0.0.1,DNS:localhost") async throws -> TestPKI {
        let pki = TestPKI(directory: directory)
        try await pki.authority("ca")
        try await pki.authority("client-ca")
        try await pki.authority("rogue-ca")
        try await pki.issue("agent", by: "ca", names: agentNames)
        try await pki.issue("client", by: "client-ca", names: "DNS:controller")
        try await pki.issue("rogue-client", by: "rogue-ca", names: "DNS:controller")
        return pki
    }

    func openssl(_ arguments: [String]) async throws -> String {
        let result = try await SubprocessRunner().run(["openssl"] + arguments, timeout: .seconds(30), outputLimit: 1 << 20)
        guard result.succeeded else { throw TestFailure("openssl \(arguments.joined(separator: " ")): \(result.standardError)") }
        return result.standardOutput
    }

    /// A self-signed CA: NAME.pem and NAME.key.
    func authority(_ name: String) async throws {
        _ = try await openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                               "-subj", "/CN=faultline test \(name)", "-keyout", path(name + ".key"), "-out", path(name + ".pem")])
    }

    /// A certificate for `names` (subjectAltName) signed by the CA `issuer`: NAME.pem and NAME.key.
    func issue(_ name: String, by issuer: String, names: String, serial: String = "0x1001") async throws {
        try "subjectAltName=\(names)\n".write(toFile: path(name + ".ext"), atomically: true, encoding: .utf8)
        _ = try await openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                               "-subj", "/CN=\(name)", "-keyout", path(name + ".key"), "-out", path(name + ".csr")])
        _ = try await openssl(["x509", "-req", "-in", path(name + ".csr"), "-CA", path(issuer + ".pem"), "-CAkey", path(issuer + ".key"),
                               "-set_serial", serial, "-days", "2", "-extfile", path(name + ".ext"), "-out", path(name + ".pem")])
    }

    /// The serial number (hex) of the certificate an HTTPS agent on 127.0.0.1:`port` presents now, on a new
    /// connection that checks it against the CA (curl's %{certs}).
    func servedSerial(port: Int) async throws -> String {
        let answer = try await SubprocessRunner().run(["curl", "-sS", "--cacert", path("ca.pem"), "-w", "%{certs}", "-o", "/dev/null",
                                                       "https://127.0.0.1:\(port)/healthz"], timeout: .seconds(10), outputLimit: 1 << 20)
        guard answer.succeeded, let line = answer.standardOutput.split(separator: "\n").first(where: { $0.hasPrefix("Serial Number:") }) else {
            throw TestFailure("curl got no certificate from 127.0.0.1:\(port): \(answer.standardOutput)\(answer.standardError)")
        }
        return String(line.dropFirst("Serial Number:".count)).trimmingCharacters(in: .whitespaces)
    }
}
