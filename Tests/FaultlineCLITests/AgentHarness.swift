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
                let url = text[range.upperBound...].prefix { !$0.isWhitespace }
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
