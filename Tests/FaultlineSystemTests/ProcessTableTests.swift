@testable import FaultlineSystem
import Foundation
import Testing

@Suite struct ProcessTableTests {
    @Test func statWithSpacesAndParenthesesInTheName() throws {
        let line = "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000000 100 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0"
        let parsed = try #require(ProcessTable.parseStat(line))
        #expect(parsed.name == "a (b) c")
        #expect(parsed.state == "S")
        #expect(parsed.parentPID == 1)
        #expect(parsed.startTime == 987654)
    }

    @Test func readsThisProcess() throws {
        let me = try #require(ProcessTable().read(getpid()))
        #expect(me.pid == getpid())
        #expect(me.arguments.first?.contains("faultline") == true || me.arguments.first?.contains("xctest") == true)
        #expect(me.startTime > 0)
        #expect(ProcessTable().protectedPIDs().contains(getpid()))
        #expect(ProcessTable().protectedPIDs().contains(getppid()))
    }

    @Test func pidFiles() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-pidfile-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try " 1234\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ProcessTable.pid(fromFile: path) == 1234)
        #expect(ProcessTable.pid(fromFile: "/nonexistent/pid") == nil)
        // PostgreSQL's postmaster.pid: the PID, then the data directory, start time, port, ...
        try "4321\n/var/lib/postgresql/16/main\n1764300000\n5432\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ProcessTable.pid(fromFile: path) == 4321)
        try "not a pid\n4321\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(ProcessTable.pid(fromFile: path) == nil, "only the first line counts")
    }
}
