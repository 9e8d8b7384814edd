import FaultlineTestSupport
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The revert time of each exit path, printed as a table and appended to a file (`FAULTLINE_MATRIX_RESULTS`, else
/// `.build/failure-path-matrix.txt`).
enum MatrixResults {
    private static let rows = Mutex<[String]>([])

    static var file: String {
        ProcessInfo.processInfo.environment["FAULTLINE_MATRIX_RESULTS"] ?? TestPaths.root.appendingPathComponent(".build/failure-path-matrix.txt").path
    }

    /// Prints `matrix: <path>: reverted in X ms`, keeps the row, appends it to the file, and once `paths` rows are in
    /// (the whole matrix ran), prints the table.
    static func record(_ path: String, _ timing: MatrixResidue.Timing, trigger: String, of paths: Int) {
        let total = timing.total.map { "reverted in \(MatrixResidue.Timing.ms($0))" } ?? "NOT reverted within 20 s: \(timing.left)"
        print("matrix: \(path): \(total) (from \(trigger))")
        let row = ([path.padding(toLength: 52, withPad: " ", startingAt: 0), MatrixResidue.Timing.ms(timing.total).leftPad(8)]
            + MatrixFamily.allCases.map { MatrixResidue.Timing.ms(timing.families[$0]).leftPad(8) } + [trigger]).joined(separator: " | ")
        let (all, first) = rows.withLock { rows in
            rows.append(row)
            return (rows, rows.count == 1)
        }
        let header = (["exit path".padding(toLength: 52, withPad: " ", startingAt: 0), "all".leftPad(8)]
            + MatrixFamily.allCases.map { $0.rawValue.leftPad(8) } + ["measured from"]).joined(separator: " | ")
        var text = first ? "\n# failure-path matrix, \(ISO8601DateFormatter().string(from: Date())), pid \(getpid())\n\(header)\n" : ""
        text += row + "\n"
        if let handle = FileHandle(forWritingAtPath: file) {
            handle.seekToEndOfFile()
            handle.write(Data(text.utf8))
            try? handle.close()
        } else {
            _ = FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
        }
        guard all.count == paths else { return }
        print((["matrix: revert time per exit path (ms; per family: when it was last seen gone)", header] + all).joined(separator: "\nmatrix: "))
    }
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
