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

    @Test func aGoneProcessCannotBeWatched() throws {
        #expect(ProcessWatch(ProcessIdentity(pid: getpid(), startTime: 1, name: "not-me")) == nil)
    }
}
