import FaultlineCore
import FaultlineEngine
import FaultlineJournal
import FaultlineSystem
import Foundation
import Testing

/// Retention of finished runs in the journal and its state directory: which runs go, which never do, and that the
/// space comes back. No root; a state directory in /tmp.
@Suite struct JournalRetentionTests {
    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-retention-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func finished(_ journal: Journal, _ id: String, state: RunState = .succeeded, fault: FaultRunState? = nil, padding: Int = 0) throws {
        let me = ProcessIdentity(pid: getpid(), startTime: 1, name: "test")
        try journal.begin(RunEntry(id: id, scenario: "retention", state: .running, startedAt: Date(), runner: me, deadline: Date().addingTimeInterval(60)))
        if let fault {
            try journal.record(runID: id, fault: "f", type: .diskFill, state: fault,
                               record: .removeFile("/tmp/faultline-retention-" + String(repeating: "x", count: padding)))
        }
        try journal.setState(state, of: id)
    }

    @Test("victims: beyond the newest keepRuns or older than keepFor, oldest first; a protected run never, and it does not count among the kept")
    func victims() {
        let now = Date()
        let runs = (0..<10).map { Retention.Finished(id: "r\($0)", endedAt: now.addingTimeInterval(Double($0) * 3_600 - 9 * 3_600)) }
        // r9 ended now, r0 nine hours ago.
        #expect(Retention(keepRuns: 3, keepFor: nil).victims(runs, now: now, protected: []) == ["r0", "r1", "r2", "r3", "r4", "r5", "r6"])
        #expect(Retention(keepRuns: 3, keepFor: nil).victims(runs, now: now, protected: ["r1", "r8"]) == ["r0", "r2", "r3", "r4", "r5"])
        #expect(Retention(keepRuns: 100, keepFor: .seconds(4 * 3_600 + 1)).victims(runs, now: now, protected: []) == ["r0", "r1", "r2", "r3", "r4"])
        #expect(Retention(keepRuns: 100, keepFor: nil).victims(runs, now: now, protected: []).isEmpty)
        #expect(Retention.standard.keepRuns == 500 && Retention.standard.keepFor?.seconds == 14 * 86_400)
    }

    @Test("--keep-for: whole days or a duration; 0 is no bound; anything else says what it takes")
    func ages() throws {
        #expect(try Retention.age(parsing: "14d")?.seconds == 14 * 86_400)
        #expect(try Retention.age(parsing: "12h")?.seconds == 12 * 3_600)
        #expect(try Retention.age(parsing: "0") == nil)
        for bad in ["", "14 days", "-1d", "d", "1.5d"] {
            #expect(throws: ValueError.self, "\(bad)") { try Retention.age(parsing: bad) }
        }
        do { _ = try Retention.age(parsing: "fortnight") } catch { #expect(error.message.contains("14d")) }
    }

    @Test("prune: finished runs beyond the bound go with their faults; a running run, a failed revert and a pinned run stay until acknowledged")
    func prune() throws {
        let path = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let journal = try Journal(directory: path)
        // Older than every other, but it still holds a namespace pin.
        try Self.finished(journal, "pinned")
        try journal.recordPin(PinnedNamespace(path: path + "/pins/x", source: "/proc/1/ns/net", identity: NamespaceIdentity(device: 4, inode: 4026531840)),
                              runID: "pinned")
        for index in 0..<8 { try Self.finished(journal, "old\(index)", fault: .reverted) }
        try Self.finished(journal, "stuck", state: .failed, fault: .revertFailed)
        let me = ProcessIdentity(pid: getpid(), startTime: 1, name: "test")
        try journal.begin(RunEntry(id: "live", scenario: "retention", state: .running, startedAt: Date(), runner: me, deadline: Date()))
        for index in 0..<3 { try Self.finished(journal, "new\(index)") }

        let removed = try journal.prune(Retention(keepRuns: 3, keepFor: nil))
        #expect(Set(removed) == Set((0..<8).map { "old\($0)" }), "\(removed)")
        #expect(Set(try journal.runs().map(\.id)) == ["stuck", "pinned", "live", "new0", "new1", "new2"])
        #expect(try journal.faults(of: "old0").isEmpty, "its faults went with it")
        #expect(try journal.faults(of: "stuck").first?.state == .revertFailed)

        // Acknowledged after a manual cleanup: now it may go.
        _ = try journal.forget(runID: "stuck", fault: nil, note: "cleaned by hand")
        try journal.forgetPin(path + "/pins/x", runID: "pinned")
        #expect(Set(try journal.prune(Retention(keepRuns: 3, keepFor: nil))) == ["stuck", "pinned"])
        // The age bound: a day later, with keepFor 1h, every finished run goes; the running one stays.
        #expect(Set(try journal.prune(Retention(keepRuns: 100, keepFor: .seconds(3_600)), now: Date().addingTimeInterval(86_400))) == ["new0", "new1", "new2"])
        #expect(try journal.runs().map(\.id) == ["live"])
    }

    @Test("RunSession.prune removes a pruned run's folder, but leaves a folder an agent keeps (status.json) to the agent")
    func folders() throws {
        let path = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let journal = try Journal(directory: path)
        for id in ["aaa1", "aaa2", "aaa3"] {
            try Self.finished(journal, id)
            try FileManager.default.createDirectory(atPath: path + "/runs/" + id, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: path + "/runs/\(id)/guard.log", contents: Data("guard\n".utf8))
        }
        _ = FileManager.default.createFile(atPath: path + "/runs/aaa2/status.json", contents: Data("{}".utf8))
        let removed = try RunSession.prune(journal, retention: Retention(keepRuns: 1, keepFor: nil))
        #expect(Set(removed) == ["aaa1", "aaa2"])
        #expect(!FileManager.default.fileExists(atPath: path + "/runs/aaa1"))
        #expect(FileManager.default.fileExists(atPath: path + "/runs/aaa2/status.json"), "the agent's folder is the agent's to prune")
        #expect(FileManager.default.fileExists(atPath: path + "/runs/aaa3/guard.log"))
    }

    @Test("compact: after pruning most of a large journal its files shrink (VACUUM and a truncated write-ahead log)")
    func compact() throws {
        let path = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let journal = try Journal(directory: path)
        for index in 0..<1_500 { try Self.finished(journal, String(format: "r%05d", index), fault: .reverted, padding: 2_000) }
        let full = StateUsage.measure(path).journalBytes
        #expect(full > 3_000_000, "\(full)")
        try journal.prune(Retention(keepRuns: 10, keepFor: nil))
        try journal.compact()
        let compacted = StateUsage.measure(path).journalBytes
        #expect(compacted < full / 5, "\(full) → \(compacted) bytes")
        #expect(try journal.runs().count == 10)
        let usage = StateUsage.measure(path)
        #expect(usage.journalBytes > 0 && usage.bytes >= usage.journalBytes && usage.description.contains("MB (journal "), "\(usage)")
    }
}
