@testable import FaultlineSystem
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct FilesystemTests {
    func temporary(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("faultline-fs-\(getpid())-\(name)").path
    }

    @Test func theWriteFallbackWritesExactlyTheSize() throws {
        let path = temporary("zeros")
        defer { unlink(path) }
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o600)
        try #require(fd >= 0)
        try Filesystem.writeZeros(fd: fd, bytes: 3 << 20 | 123, path: path)
        close(fd)
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue == 3 << 20 | 123)
    }

    @Test func aFillFileIsNeverOverwrittenAndRemovalIsIdempotent() throws {
        let path = temporary("fill")
        defer { unlink(path) }
        try Filesystem.createFill(at: path, bytes: 1 << 20)
        #expect(throws: FaultlineError.self) { try Filesystem.createFill(at: path, bytes: 1 << 20) }
        #expect(try Filesystem.remove(path))
        #expect(try !Filesystem.remove(path))
    }
}

import FaultlineCore
