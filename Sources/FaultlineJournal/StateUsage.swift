import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What a state directory holds on disk: for `doctor` and the agent's `faultline_state_bytes`.
public struct StateUsage: Sendable, Hashable {
    /// Bytes allocated on disk for everything in it (as `du` counts them, the journal's 4 MiB reserve included).
    public var bytes: Int64
    /// The journal's database, write-ahead log and shared memory.
    public var journalBytes: Int64
    /// Run folders (`runs/ID`).
    public var runFolders: Int

    /// Walks `directory` (not following links); an unreadable part counts as empty.
    public static func measure(_ directory: String) -> StateUsage {
        var usage = StateUsage(bytes: 0, journalBytes: 0, runFolders: 0)
        func allocated(_ path: String) -> Int64 {
            var info = stat()
            return lstat(path, &info) == 0 ? Int64(info.st_blocks) * 512 : 0
        }
        usage.bytes = allocated(directory)
        if let walk = FileManager.default.enumerator(atPath: directory) {
            while let relative = walk.nextObject() as? String {
                let size = allocated(directory + "/" + relative)
                usage.bytes += size
                if relative.hasPrefix("journal.sqlite") { usage.journalBytes += size }
                if relative.hasPrefix("runs/"), !relative.dropFirst(5).contains("/") { usage.runFolders += 1 }
            }
        }
        return usage
    }

    /// `12.3 MB (journal 1.1 MB, 200 run folders)`.
    public var description: String {
        "\(Self.megabytes(bytes)) (journal \(Self.megabytes(journalBytes)), \(runFolders) run folder\(runFolders == 1 ? "" : "s"))"
    }

    static func megabytes(_ bytes: Int64) -> String { String(format: "%.1f MB", Double(bytes) / 1_000_000) }
}
