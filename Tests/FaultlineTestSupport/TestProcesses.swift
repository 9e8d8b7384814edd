import FaultlineCore
import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Child processes with a unique name (a copy of sleep called `flt-sl-<hex>`), so process faults hit nothing else.
public final class TestSleepers: @unchecked Sendable {
    // @unchecked: `children` is only touched from the test that owns this value.
    public let name: String
    public let directory: URL
    public let program: String
    private var children: [ProcessIdentity] = []

    public init() throws {
        name = "flt-sl-\(String(UInt32.random(in: 0x100000 ... 0xffffff), radix: 16))"
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-\(name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        program = directory.appendingPathComponent(name).path
        try FileManager.default.copyItem(atPath: "/bin/sleep", toPath: program)
    }

    /// Starts one more sleeper; `arguments` make its command line unique (`sleep` adds them up).
    public func start(_ arguments: [String] = ["300"]) throws -> ProcessIdentity {
        let child = try ChildProcess.spawn([program] + arguments, table: ProcessTable())
        children.append(child)
        return child
    }

    public func state(_ child: ProcessIdentity) -> String? {
        guard let record = ProcessTable().read(child.pid), record.startTime == child.startTime else { return nil }
        return record.state
    }

    /// Gone for good: not running, or a zombie we then reap.
    public func isGone(_ child: ProcessIdentity) -> Bool {
        let state = state(child)
        if state == "Z" { ChildProcess.reap(child.pid) }
        return state == nil || state == "Z"
    }

    /// Kills and reaps every sleeper, removes the copy.
    public func removeAll() {
        for child in children {
            _ = try? ProcessSignaller().send(.kill, to: child)
            _ = try? ProcessSignaller().send(.cont, to: child)
            for _ in 0..<200 where !ChildProcess.reap(child.pid) { usleep(5_000) }
        }
        children.removeAll()
        // A faultline process of the test's with its state or files in this folder (a detached guard finishing its
        // revert, an agent's run) would make the folder again after it is removed (the journal and the claim locks
        // create their directory): wait up to 10 s for such processes to end, then end them.
        let folder = directory.path + "/"
        let deadline = Date().addingTimeInterval(10)
        while true {
            let users = ProcessTable().all().filter { process in
                process.state != "Z" && process.arguments.contains { $0.hasPrefix(folder) }
            }
            if users.isEmpty { break }
            if Date() > deadline {
                for process in users { _ = try? ProcessSignaller().send(.kill, to: process.identity) }
                usleep(100_000)
                break
            }
            usleep(50_000)
        }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Where the built `faultline` executable is.
public enum TestPaths {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    public static var faultline: String {
        let candidates = [
            Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("faultline").path,
            Bundle.main.bundleURL.appendingPathComponent("faultline").path,
            root.appendingPathComponent(".build/debug/faultline").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
    }
}

/// The test tools' Python (`.build-tools/venv`, made by `scripts/test-python`, which `make test` runs).
public enum TestPython {
    public static let path = TestPaths.root.appendingPathComponent(".build-tools/venv/bin/python3").path

    /// Whether that Python imports every module of `modules` (the check runs it once).
    public static func canImport(_ modules: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-c", "import \(modules)"]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}
