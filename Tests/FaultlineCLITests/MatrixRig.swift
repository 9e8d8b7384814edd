import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What one matrix test made and removes again: a namespace with a veth pair (the network faults' target), the test's
/// sleepers (two frozen by the pause fault, one to be a target process that exits), a tmpfs to fill, a folder.
struct MatrixRig {
    let directory: String
    let namespace: TestNamespace
    let sleepers: TestSleepers
    let frozen: [ProcessIdentity]
    let victims: TestSleepers
    /// The tmpfs the disk-fill fault fills.
    let fill: String
    let state: String
    let spawned = SpawnedProcesses()
    var reports: String { directory + "/out" }
    /// The command probe fails once this file exists.
    var probeTrigger: String { directory + "/abort-now" }
    var residue: MatrixResidue { MatrixResidue(namespace: namespace.name, fill: fill, frozen: frozen) }

    /// Builds a rig; with `stateOnFill`, the state directory lives on the tmpfs the disk-fill fills (16 MiB, else 32 MiB).
    static func make(stateOnFill: Bool) async throws -> MatrixRig {
        let directory = try makeTestDirectory("matrix")
        let fill = directory + "/fill"
        var namespace: TestNamespace?
        var sleepers: [TestSleepers] = []
        do {
            try FileManager.default.createDirectory(atPath: fill, withIntermediateDirectories: true)
            let mounted = try await SubprocessRunner().run(["mount", "-t", "tmpfs", "-o", "size=\(stateOnFill ? 16 : 32)m", "flt-test-matrix", fill],
                                                           timeout: .seconds(10), outputLimit: 1 << 16)
            guard mounted.succeeded else { throw TestFailure("cannot mount a tmpfs on \(fill): \(mounted.standardError)") }
            namespace = try await TestNamespace.create(address: "10.213.0.1/24", chatter: true)
            sleepers = [try TestSleepers(), try TestSleepers()]
            let frozen = [try sleepers[0].start(["300"]), try sleepers[0].start(["299", "1"])]
            return MatrixRig(directory: directory, namespace: namespace!, sleepers: sleepers[0], frozen: frozen, victims: sleepers[1],
                             fill: fill, state: stateOnFill ? fill + "/state" : directory + "/state")
        } catch {
            sleepers.forEach { $0.removeAll() }
            await namespace?.remove()
            unmountAll(under: directory)
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Runs `body` with a new rig and removes everything of it afterwards, also when `body` throws.
    static func with(stateOnFill: Bool = false, _ body: (MatrixRig) async throws -> Void) async throws {
        let rig = try await make(stateOnFill: stateOnFill)
        do {
            try await body(rig)
        } catch {
            await rig.remove()
            throw error
        }
        await rig.remove()
    }

    /// Kills what the test started (and a guard of its state directory still running after a failed test), then
    /// removes the sleepers, the mounts (pins, tmpfs), the namespace and the folder.
    func remove() async {
        spawned.killAll()
        for process in ProcessTable().all() where process.arguments.count > 1 && process.arguments[1] == "guard" && process.arguments.contains(state) {
            _ = try? ProcessSignaller().send(.kill, to: process.identity)
        }
        sleepers.removeAll()
        victims.removeAll()
        Self.unmountAll(under: directory)
        await namespace.remove()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Lazily unmounts every mount below `directory`, deepest first (namespace pins, then the tmpfs).
    static func unmountAll(under directory: String) {
        for point in mounts(under: directory).sorted(by: { $0.count > $1.count }) { _ = umount2(point, Int32(MNT_DETACH)) }
    }

    static func mounts(under directory: String) -> [String] {
        let table = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        return table.split(separator: "\n").map { String($0.split(separator: " ")[1]) }.filter { $0.hasPrefix(directory + "/") }
    }

    /// Kills the run's guard with SIGKILL (there must be one).
    func killGuard() {
        let guards = ProcessTable().all().filter { $0.arguments.count > 1 && $0.arguments[1] == "guard" && $0.arguments.contains(state) }
        #expect(guards.count == 1, "one guard for the run: \(guards.map(\.commandLine))")
        for process in guards { _ = try? ProcessSignaller().send(.kill, to: process.identity) }
    }

    /// Bytes free on the tmpfs of the disk-fill.
    var freeOnFill: UInt64 {
        var space = statvfs()
        guard statvfs(fill, &space) == 0 else { return .max }
        return UInt64(space.f_bavail) * UInt64(space.f_bsize)
    }

    /// Takes what is still free on the tmpfs of the disk-fill with a file of the test's own (gone with the tmpfs), in
    /// ever smaller pieces down to a page; returns the bytes still free.
    func fillTheRest() -> UInt64 {
        var piece = freeOnFill
        var index = 0
        while piece >= 4096 {
            let fd = open("\(fill)/test-filler-\(index)", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            guard fd >= 0 else { break }
            let code = posix_fallocate(fd, 0, off_t(piece))
            close(fd)
            if code == 0 { index += 1 } else { piece /= 2 }
        }
        return freeOnFill
    }

    /// Namespace pins of the run still mounted.
    var pins: [String] { Self.mounts(under: state + "/pins") }

    /// The matrix scenario: every family at once for `duration`; network faults aimed at `networkTarget`; with
    /// `probe`, a command probe that fails once `probeTrigger` exists (and aborts the run at its first failure).
    func scenario(_ name: String, duration: String, networkTarget: String, probe: Bool, fillToFull: Bool = false) throws -> String {
        let steadyState = probe ? """
              steadyState:
                probes:
                  - {name: trigger, interval: 100ms, command: {argv: [/usr/bin/test, "!", -e, \(probeTrigger)], timeout: 2s}}
                abortWhen: {consecutiveFailures: 1}

            """ : ""
        let faults = """
                - {name: shape, type: bandwidth, interface: eth0, rate: 10mbit, duration: \(duration), target: \(networkTarget)}
                - {name: cut, type: drop, duration: \(duration), to: {hosts: [10.213.0.2], ports: [9], protocol: tcp}, target: \(networkTarget)}
                - {name: slow, type: latency, interface: eth1, delay: 20ms, engine: nfqueue, duration: \(duration), target: \(networkTarget)}
                - {name: freeze, type: pause-process, duration: \(duration), match: {name: \(sleepers.name)}}
                - {name: fill, type: disk-fill, path: \(fill), \(fillToFull ? "fillTo: 100%" : "size: 4MiB"), duration: \(duration)}
                - {name: burn, type: cpu-stress, workers: 1, load: 10%, duration: \(duration)}
                - {name: hog, type: memory-stress, size: 16MiB, duration: \(duration)}
            """
        let file = directory + "/\(name).yaml"
        try agentScenario(name, maxDuration: "60s", steadyState: steadyState, faults: faults).write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    /// `faultline ARGS` started by the test, output to a log; killed at the end of the test if still running.
    func start(_ arguments: [String], log name: String) throws -> (ProcessIdentity, log: String) {
        let log = directory + "/\(name).log"
        let child = try ChildProcess.spawn([TestPaths.faultline] + arguments, table: ProcessTable(), output: log)
        spawned.add(child.pid, child: true)
        return (child, log)
    }

    /// `report.json` of a `faultline run` (in `reports`) or of an agent's run (in its run folder), if written.
    func report(run: String? = nil) -> [String: Any]? {
        let path = run.map { "\(state)/runs/\($0)/report.json" } ?? reports + "/report.json"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }
}

/// Processes a test started, killed (and ours reaped) when it ends.
final class SpawnedProcesses: Sendable {
    private let processes = Mutex<[(pid: Int32, child: Bool)]>([])

    /// `child`: our own child, to be reaped.
    func add(_ pid: Int32, child: Bool) { processes.withLock { $0.append((pid, child)) } }

    func killAll() {
        let started: [(pid: Int32, child: Bool)] = processes.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for process in started.reversed() {
            kill(process.pid, SIGKILL)
            for _ in 0..<200 where process.child && !ChildProcess.reap(process.pid) { usleep(5_000) }
        }
    }
}
