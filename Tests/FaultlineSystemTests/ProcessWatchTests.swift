import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

@Suite struct ProcessWatchTests {
    @Test func wakesWhenTheProcessIsKilled() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let child = try sleepers.start()
        let watch = try #require(ProcessWatch(child))
        #expect(!watch.waitForExit(timeoutMilliseconds: 50))
        #expect(try ProcessSignaller().send(.kill, to: child) == .sent)
        #expect(watch.waitForExit(timeoutMilliseconds: 1000))
    }

    @Test("a write to a file in the watched directory wakes the wait; nothing else does, and the process's end still wins")
    func wakesOnAWriteInTheDirectory() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let child = try sleepers.start()
        let watch = try #require(ProcessWatch(child))
        let directory = NSTemporaryDirectory() + "flt-watch-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let changes = try #require(DirectoryChanges(directory))
        #expect(watch.wait(timeoutMilliseconds: 50, orChangeIn: changes) == .timedOut)
        FileManager.default.createFile(atPath: directory + "/journal.sqlite-wal", contents: Data("a".utf8))
        #expect(watch.wait(timeoutMilliseconds: 5000, orChangeIn: changes) == .changed)
        // The events were read: the next wait sleeps again until something happens.
        #expect(watch.wait(timeoutMilliseconds: 50, orChangeIn: changes) == .timedOut)
        let handle = try #require(FileHandle(forWritingAtPath: directory + "/journal.sqlite-wal"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("b".utf8))
        try handle.close()
        #expect(watch.wait(timeoutMilliseconds: 5000, orChangeIn: changes) == .changed)
        #expect(try ProcessSignaller().send(.kill, to: child) == .sent)
        #expect(watch.wait(timeoutMilliseconds: 5000, orChangeIn: changes) == .exited)
    }

    @Test func aGoneProcessCannotBeWatched() throws {
        #expect(ProcessWatch(ProcessIdentity(pid: getpid(), startTime: 1, name: "not-me")) == nil)
    }
}
