import FaultlineCore
@testable import FaultlineFaults
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Synchronization
import Testing

/// A filesystem the test mounted (tmpfs or loop ext4) under a temporary directory; unmounted at the end.
struct TestMount {
    let directory: String
    let image: String?

    static func tmpfs(size: String) async throws -> TestMount {
        let directory = try make()
        try await run(["mount", "-t", "tmpfs", "-o", "size=\(size)", "flt-test-tmpfs", directory])
        return TestMount(directory: directory, image: nil)
    }

    static func loopExt4(size: String) async throws -> TestMount {
        let directory = try make()
        let image = directory + ".img"
        do {
            try await run(["truncate", "-s", size, image])
            try await run(["mkfs.ext4", "-q", "-F", image])
            try await run(["mount", "-o", "loop", image, directory])
        } catch {
            try? FileManager.default.removeItem(atPath: image)
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        return TestMount(directory: directory, image: image)
    }

    static func make() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("flt-test-mnt-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func run(_ argv: [String]) async throws {
        let result = try await SubprocessRunner().run(argv, timeout: .seconds(60), outputLimit: 1 << 20)
        guard result.succeeded else { throw TestFailure("'\(argv.joined(separator: " "))': \(result.standardError)") }
    }

    func remove() async {
        _ = try? await SubprocessRunner().run(["umount", directory])
        try? FileManager.default.removeItem(atPath: directory)
        if let image { try? FileManager.default.removeItem(atPath: image) }
    }
}

@Suite(.serialized, .enabled(if: Privilege.isRoot && Privilege.hasTool("mount") && Privilege.hasTool("mkfs.ext4"), "needs root, mount and mkfs.ext4"))
struct DiskFillDriverTests {
    func fillTo90(_ mount: TestMount) async throws {
        let scenario = try ScenarioLoader.load(yaml: ScenarioHarness.scenario(faults: "    - {name: full, type: disk-fill, path: \(mount.directory), fillTo: 90%}"), file: "t.yaml")
        let plan = Planner(facts: HostFacts()).plan(scenario, runID: "t4")
        let driver = Drivers.driver(for: plan.faults[0], context: DriverContext())
        let before = try Filesystem.usage(of: mount.directory)
        let journal = MemoryJournal()
        let record = try await driver.apply(journal: journal)
        #expect(journal.all == [.removeFile("\(mount.directory)/.faultline-fill-t4-full")])
        let during = try Filesystem.usage(of: mount.directory)
        print("disk-fill 90% on \(mount.image == nil ? "tmpfs" : "ext4"): \(String(format: "%.2f", during.usedFraction * 100))% used (before \(String(format: "%.2f", before.usedFraction * 100))%)")
        #expect(abs(during.usedFraction - 0.90) <= 0.01)
        #expect(try await driver.verify(record) == .active)
        try await driver.revert(record)
        #expect(try await driver.verify(record) == .reverted)
        #expect(!Filesystem.exists("\(mount.directory)/.faultline-fill-t4-full"))
        #expect(abs(try Filesystem.usage(of: mount.directory).usedFraction - before.usedFraction) < 0.005)
        try await driver.revert(record)
    }

    @Test func fillsA64MiBTmpfsTo90Percent() async throws {
        let mount = try await TestMount.tmpfs(size: "64m")
        do { try await fillTo90(mount) } catch { await mount.remove(); throw error }
        await mount.remove()
    }

    @Test func fillsA256MiBLoopExt4To90Percent() async throws {
        let mount = try await TestMount.loopExt4(size: "256M")
        do { try await fillTo90(mount) } catch { await mount.remove(); throw error }
        await mount.remove()
    }

    @Test("fillTo held short by its reserve is said with the real level; room freed while it is in place is said too (the fault did not hold)")
    func aFillShortOfItsLevelIsSaid() async throws {
        let mount = try await TestMount.tmpfs(size: "64m")
        do {
            let scenario = try ScenarioLoader.load(yaml: ScenarioHarness.scenario(faults: "    - {name: full, type: disk-fill, path: \(mount.directory), fillTo: 100%, reserve: 8MiB}"), file: "t.yaml")
            let plan = Planner(facts: HostFacts()).plan(scenario, runID: "t5")
            let driver = Drivers.driver(for: plan.faults[0], context: DriverContext())
            let record = try await driver.apply(journal: MemoryJournal())
            // Room freed while the watch runs: here by the revert itself (the runner stops the watch first; this test does not).
            let notes = Mutex<[String]>([])
            let watching = Task { await driver.watch { report in notes.withLock { $0.append(report.message) } } }
            try await Task.sleep(for: .milliseconds(300))
            try await driver.revert(record)
            try await Task.sleep(for: .milliseconds(500))
            watching.cancel()
            let said = notes.withLock { $0 }
            #expect(said.first?.contains("to 87%, not the 100% asked: its reserve of 8MiB stays free") == true, "\(said)")
            #expect(said.count == 2 && said.last?.contains("free again (the fill left") == true, "the revert freed the room and the watch saw it: \(said)")
        } catch {
            await mount.remove()
            throw error
        }
        await mount.remove()
    }

    @Test func theReserveIsAlwaysLeftFree() throws {
        let usage = FilesystemUsage(size: 100 << 20, used: 10 << 20, available: 90 << 20)
        let fault = DiskFillFault(path: "/x", amount: .fillTo(Percent(100)), reserve: ByteCount(bytes: 8 << 20))
        #expect(DiskFillDriver.bytesToFill(fault, usage: usage) == 82 << 20)
        let sized = DiskFillFault(path: "/x", amount: .size(ByteCount(bytes: 5 << 20)))
        #expect(DiskFillDriver.bytesToFill(sized, usage: usage) == 5 << 20)
        let half = DiskFillFault(path: "/x", amount: .fillTo(Percent(50)))
        #expect(DiskFillDriver.bytesToFill(half, usage: usage) == 40 << 20)
    }
}

@Suite(.serialized) struct StressDriverTests {
    func driver(_ yaml: String) throws -> (any FaultDriver, PlannedFault) {
        let scenario = try ScenarioLoader.load(yaml: ScenarioHarness.scenario(faults: yaml), file: "t.yaml")
        var facts = HostFacts()
        facts.executable = TestPaths.faultline
        let plan = Planner(facts: facts).plan(scenario, runID: "t5")
        return (Drivers.driver(for: plan.faults[0], context: DriverContext()), plan.faults[0])
    }

    func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return (Double(fields[11]) ?? 0) / 100 + (Double(fields[12]) ?? 0) / 100
    }

    @Test func cpuHogBurnsTheAskedShare() async throws {
        let (driver, _) = try driver("    - {name: burn, type: cpu-stress, workers: 1, load: 50%, duration: 10s}")
        let record = try await driver.apply(journal: MemoryJournal())
        guard case .stopProcess(let hog) = record else { Issue.record("no hog: \(record)"); return }
        do {
            #expect(try await driver.verify(record) == .active)
            var score = ""
            for _ in 0..<200 where score != "1000" {
                try await Task.sleep(for: .milliseconds(10))
                score = (try? String(contentsOfFile: "/proc/\(hog.pid)/oom_score_adj", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            }
            #expect(score == "1000", "the hog offers itself first to the OOM killer")
            try await Task.sleep(for: .milliseconds(300))
            let start = cpuSeconds(hog.pid), clock = ContinuousClock.now
            try await Task.sleep(for: .seconds(2))
            let used = cpuSeconds(hog.pid) - start
            let wall = Double((ContinuousClock.now - clock).components.seconds) + Double((ContinuousClock.now - clock).components.attoseconds) / 1e18
            print("cpu-stress 1 worker at 50%: \(String(format: "%.2f", used / wall)) of a core")
            #expect(abs(used / wall - 0.5) <= 0.1)
        } catch {
            try? await driver.revert(record)
            throw error
        }
        try await driver.revert(record)
        #expect(try await driver.verify(record) == .reverted)
    }

    @Test func memoryHogHoldsTheAskedSize() async throws {
        let (driver, _) = try driver("    - {name: hold, type: memory-stress, size: 128MiB, duration: 10s}")
        let record = try await driver.apply(journal: MemoryJournal())
        guard case .stopProcess(let hog) = record else { Issue.record("no hog: \(record)"); return }
        var rss = 0.0
        for _ in 0..<200 {
            let status = (try? String(contentsOfFile: "/proc/\(hog.pid)/status", encoding: .utf8)) ?? ""
            rss = status.split(separator: "\n").first { $0.hasPrefix("RssAnon:") }
                .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) }.map { $0 / 1024 } ?? 0
            if rss >= 128 { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        print("memory-stress 128MiB: anonymous RSS \(Int(rss)) MiB")
        #expect(rss >= 128 && rss <= 128 * 1.1)
        try await driver.revert(record)
        #expect(try await driver.verify(record) == .reverted)
    }

    /// The hog outlives the thread that started it (a retired pool thread must not take it along) and
    /// ends with the process that started it.
    @Test(.enabled(if: Privilege.hasTool("python3"), "needs python3")) func theHogEndsWithItsParentProcessNotItsThread() async throws {
        let script = """
            import subprocess, sys, threading, time
            def start():
                child = subprocess.Popen([sys.argv[1], "hog", "cpu", "--workers", "1", "--load", "1", "--duration", "60s"])
                print(child.pid, flush=True)
            thread = threading.Thread(target=start)
            thread.start()
            thread.join()
            time.sleep(60)
            """
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("flt-hog-parent-\(UInt32.random(in: 0 ... .max)).out").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let parent = try ChildProcess.spawn(["/usr/bin/python3", "-c", script, TestPaths.faultline], table: ProcessTable(), output: output)
        var hogPID: Int32?
        for _ in 0..<500 where hogPID == nil {
            hogPID = (try? String(contentsOfFile: output, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if hogPID == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        guard let hogPID, let hog = ProcessTable().read(hogPID)?.identity else {
            _ = try? ProcessSignaller().send(.kill, to: parent)
            _ = await ChildProcess.waitForExit(parent.pid)
            Issue.record("the hog did not start")
            return
        }
        try await Task.sleep(for: .seconds(1))
        #expect(ProcessTable().isAlive(hog), "the thread that started it has ended; the hog runs on")
        _ = try ProcessSignaller().send(.kill, to: parent)
        _ = await ChildProcess.waitForExit(parent.pid)
        let killed = ContinuousClock.now
        while ProcessTable().isAlive(hog), ContinuousClock.now - killed < .seconds(3) {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(!ProcessTable().isAlive(hog), "the hog ends with its parent process")
        if ProcessTable().isAlive(hog) { _ = try? ProcessSignaller().send(.kill, to: hog) }
    }
}
