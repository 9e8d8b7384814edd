import CFaultlineShims
import FaultlineSystem
import Foundation
import Testing

/// Small files and /proc read without Foundation's reader, which keeps a 4 KiB buffer for every read that returns
/// nothing (an empty /proc/PID/cmdline): a long-lived agent grew by that on every process scan.
@Suite struct FileBytesTests {
    @Test("reads whole files across chunks, up to a limit; nil for a file that cannot be opened")
    func reads() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-filebytes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let content = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try Data(content).write(to: URL(fileURLWithPath: path))
        #expect(FileBytes.read(path) == content)
        #expect(FileBytes.read(path, limit: 5_000) == Array(content.prefix(5_000)))
        #expect(FileBytes.read(path + ".missing") == nil)
        let stat = try #require(FileBytes.text("/proc/self/stat"))
        #expect(stat.hasPrefix("\(getpid()) ("), "\(stat)")
    }

    @Test("no heap growth from reading empty files, nor from scanning every process (kernel threads have an empty cmdline)")
    func noGrowth() throws {
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-filebytes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: empty) }
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        for _ in 0..<100 { _ = FileBytes.read(empty) }
        let before = faultline_heap_in_use()
        for _ in 0..<2_000 { #expect(FileBytes.read(empty) == []) }
        let afterReads = faultline_heap_in_use()
        #expect(afterReads < before + 64 * 1024, "2,000 reads of an empty file kept \(Int64(afterReads) - Int64(before)) bytes")
        let table = ProcessTable()
        _ = table.all()
        let scanBefore = faultline_heap_in_use()
        var seen = 0
        for _ in 0..<20 { seen = table.all().count }
        let scanAfter = faultline_heap_in_use()
        #expect(seen > 0)
        #expect(scanAfter < scanBefore + 256 * 1024, "20 scans of \(seen) processes kept \(Int64(scanAfter) - Int64(scanBefore)) bytes")
    }
}
