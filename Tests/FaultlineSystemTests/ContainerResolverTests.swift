import FaultlineCore
@testable import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Finding containers: the runtimes' answers read, and the kernel's view of the process found (no runtime needed:
/// a real HTTP server on a unix socket answers as the Docker Engine API would, about a process this test started).
@Suite struct ContainerResolverTests {
    @Test func cgroupsOfAHybridHostAreTheCPUAndMemoryHierarchies() {
        let mountinfo = """
            25 30 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
            27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
            26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
            30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
            31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
            32 25 0:29 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,pids
            """
        let cgroup = """
            12:pids:/libpod_parent/libpod-abc
            1:name=systemd:/libpod_parent/libpod-abc
            4:memory:/libpod_parent/libpod-abc
            3:cpu,cpuacct:/libpod_parent/libpod-abc
            0::/libpod_parent/libpod-abc
            """
        #expect(ContainerResolver.cgroupDirectories(cgroup: cgroup, mountinfo: mountinfo) == [
            "/sys/fs/cgroup/memory/libpod_parent/libpod-abc", "/sys/fs/cgroup/cpu,cpuacct/libpod_parent/libpod-abc",
            "/sys/fs/cgroup/unified/libpod_parent/libpod-abc",
        ])
        // cgroup v2 alone, seen from a cgroup namespace whose root is the container's.
        let v2 = "40 30 0:30 /kubepods /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
        #expect(ContainerResolver.cgroupDirectories(cgroup: "0::/kubepods/pod1/ctr\n", mountinfo: v2) == ["/sys/fs/cgroup/pod1/ctr"])
        // The mount's root is stripped only at a path boundary; a path with '..' is never joined.
        #expect(ContainerResolver.cgroupDirectories(cgroup: "0::/kubepodsx/ctr\n", mountinfo: v2) == ["/sys/fs/cgroup/kubepodsx/ctr"])
        #expect(ContainerResolver.cgroupDirectories(cgroup: "0::/../outside\n", mountinfo: v2).isEmpty)
    }

    @Test func ctrTasksAreReadByID() {
        let text = "TASK      PID     STATUS    \napp       4242    RUNNING\nold       0       STOPPED\n"
        let tasks = ContainerResolver.tasks(fromCtr: text)
        #expect(tasks.map(\.id) == ["app", "old"])
        #expect(tasks.first?.pid == 4242)
        #expect(tasks.last?.status == "STOPPED")
    }

    @Test func httpAnswersPlainAndChunked() throws {
        let plain = try UnixSocketHTTP.parse(Data("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n\r\n{\"message\":\"no such container\"}".utf8), from: "s")
        #expect(plain.status == 404)
        #expect(String(decoding: plain.body, as: UTF8.self) == "{\"message\":\"no such container\"}")
        #expect(plain.header("content-type") == "application/json")
        let chunked = try UnixSocketHTTP.parse(Data("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\n\r\n".utf8), from: "s")
        #expect(String(decoding: chunked.body, as: UTF8.self) == "{\"a\":1}")
        #expect(throws: FaultlineError.self) { try UnixSocketHTTP.parse(Data("garbage".utf8), from: "s") }
    }

    @Test func pathsAreResolvedInsideTheContainersRoot() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("flt-root-\(UInt32.random(in: 0 ... .max))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/var/lib/app", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/data", withIntermediateDirectories: true)
        // An absolute link means the container's /data, not this host's; `..` stops at the container's root.
        try FileManager.default.createSymbolicLink(atPath: root + "/var/log", withDestinationPath: "/data")
        try FileManager.default.createSymbolicLink(atPath: root + "/var/lib/up", withDestinationPath: "../../../../../etc")
        #expect(try Filesystem.resolve("/var/log", inRoot: root) == "/data")
        #expect(try Filesystem.resolve("/var/log/../lib/app", inRoot: root) == "/lib/app")
        #expect(try Filesystem.resolve("/var/lib/up", inRoot: root) == "/etc")
        #expect(try Filesystem.resolve("/missing/dir", inRoot: root) == "/missing/dir")
        try FileManager.default.createSymbolicLink(atPath: root + "/loop", withDestinationPath: "/loop")
        #expect(throws: FaultlineError.self) { try Filesystem.resolve("/loop/x", inRoot: root) }
    }

    @Test func aContainerIsFoundThroughTheDockerAPIWithItsKernelView() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let child = try sleepers.start()
        let server = try FakeEngine(containers: ["app": (id: "f00dfeed" + String(repeating: "0", count: 56), pid: child.pid, running: true),
                                                 "down": (id: "dead", pid: 0, running: false)])
        defer { server.stop() }
        let resolver = ContainerResolver(socket: server.socket)
        let found = try await resolver.find(ContainerRef(name: "app")).get()
        #expect(found.pid == child.pid)
        #expect(found.name == "app")
        #expect(found.runtime == .docker)
        #expect(found.startTime == child.startTime)
        // The "container" is a process of this host's PID namespace: it cannot confine process faults.
        #expect(found.pidNamespace == nil)
        #expect(!found.cgroups.isEmpty, "no cgroup directory found for pid \(child.pid)")
        let missing = await resolver.find(ContainerRef(name: "nope"))
        #expect(throws: FaultlineError.self) { try missing.get() }
        if case .failure(let error) = missing { #expect(error.message == "no container 'nope' through the runtime at \(server.socket)") }
        let stopped = await resolver.find(ContainerRef(name: "down"))
        if case .failure(let error) = stopped { #expect(error.message == "container 'down' is not running (exited): start it first") } else { Issue.record("a stopped container was found") }
        // A scenario's containers are found once each, and the one missing says why.
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: resolve}
            spec:
              maxDuration: 1m
              target: {container: app}
              faults:
                - {name: a, type: pause-process, match: {name: sleep}}
                - {name: b, type: drop, target: {container: nope}}
            """, file: "r.yaml")
        let resolution = await resolver.resolve(scenario)
        let (resolved, problems) = (resolution.scenario, resolution.problems)
        #expect(resolved.spec.target?.namespacePath == "/proc/\(child.pid)/ns/net")
        #expect(problems == ["container nope": "no container 'nope' through the runtime at \(server.socket)"])
    }

    @Test func noSocketSaysWhereItLooked() async {
        let resolver = ContainerResolver(socket: "/nonexistent/flt-test.sock")
        let result = await resolver.find(ContainerRef(name: "app"))
        guard case .failure(let error) = result else { Issue.record("found through no socket"); return }
        #expect(error.message.hasPrefix("cannot ask the container runtime at /nonexistent/flt-test.sock: cannot connect"), "\(error.message)")
    }
}

/// A Docker Engine API on a unix socket (python3's http.server), knowing a few containers.
final class FakeEngine: @unchecked Sendable {
    let socket: String
    let directory: String
    let process: Process

    init(containers: [String: (id: String, pid: Int32, running: Bool)]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("flt-engine-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socket = directory + "/engine.sock"
        let table = containers.map { name, c in
            "\"\(name)\": {\"Id\": \"\(c.id)\", \"Name\": \"/\(name)\", \"State\": {\"Pid\": \(c.pid), \"Running\": \(c.running ? "True" : "False"), \"Status\": \"\(c.running ? "running" : "exited")\"}}"
        }.joined(separator: ", ")
        let script = """
            import http.server, json, os, socketserver, sys
            table = {\(table)}
            class Handler(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    parts = self.path.strip("/").split("/")
                    if len(parts) == 3 and parts[0] == "containers" and parts[2] == "json" and parts[1] in table:
                        body, code = json.dumps(table[parts[1]]).encode(), 200
                    elif parts == ["_ping"]:
                        body, code = b"OK", 200
                    else:
                        body, code = json.dumps({"message": "No such container: " + self.path}).encode(), 404
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                def log_message(self, *args): pass
            class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
                def get_request(self):
                    request, _ = super().get_request()
                    return request, ("local", 0)
            server = Server(sys.argv[1], Handler)
            print("ready", flush=True)
            server.serve_forever()
            """
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, socket]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        _ = pipe.fileHandleForReading.readData(ofLength: 6)
    }

    func stop() {
        // Not waitUntilExit: it spins a run loop, which hangs off the main thread.
        kill(process.processIdentifier, SIGKILL)
        for _ in 0..<200 where process.isRunning { usleep(10_000) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}
