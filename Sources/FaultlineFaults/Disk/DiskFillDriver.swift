import FaultlineCore
import FaultlineSystem
import Foundation
import Synchronization

/// disk-fill: one preallocated file on the filesystem of `path`, sized from statvfs; removed on revert.
struct DiskFillDriver: FaultDriver {
    let fault: DiskFillFault?
    let file: String
    let context: DriverContext

    /// Bytes to allocate so that `df` shows the asked fill, never leaving less than `reserve` free.
    static func bytesToFill(_ fault: DiskFillFault, usage: FilesystemUsage) -> UInt64 {
        let wanted: UInt64 = switch fault.amount {
        case .size(let size): size.bytes
        case .fillTo(let percent):
            UInt64(max(0, (percent.fraction * Double(usage.used + usage.available) - Double(usage.used)).rounded()))
        }
        let reserve = fault.reserve?.bytes ?? 0
        let room = usage.available > reserve ? usage.available - reserve : 0
        return min(wanted, room)
    }

    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        guard let fault else { throw FaultlineError(.internalError, "disk-fill driver without a fault") }
        // In a container: only while its main process is the one found when the run started (else /proc/PID/root
        // is another process's root, or gone).
        if let owner = fault.owner, !context.processes.isAlive(owner) {
            throw FaultlineError(.commandFailed, "the container's main process \(owner.pid) is not the one found when the run started (the container restarted or stopped): nothing was filled")
        }
        let record = RevertRecord.removeFile(file)
        try await journal.record(record)
        // Measured after the journal write, which may itself have taken room on this filesystem.
        let usage = try Filesystem.usage(of: fault.path)
        let bytes = Self.bytesToFill(fault, usage: usage)
        guard bytes > 0 else {
            throw FaultlineError(.commandFailed, "the filesystem of '\(fault.path)' is already \(Int(usage.usedFraction * 100))% full (or within its reserve): nothing to fill")
        }
        do {
            let isPercent = if case .fillTo = fault.amount { true } else { false }
            try Filesystem.createFill(at: file, bytes: bytes, shrinkWhenFull: isPercent)
        } catch {
            _ = try? Filesystem.remove(file)
            throw error
        }
        if case .fillTo(let percent) = fault.amount, let after = try? Filesystem.usage(of: fault.path) {
            left.set(after)
            // Short of the level asked (a reserve, or a fill that shrank to fit): said with the real figure.
            let reached = Double(after.used) / Double(max(after.used + after.available, 1))
            if reached + 0.005 < percent.fraction {
                notes.add(FaultReport(level: .failure, message: "filled the filesystem of '\(fault.path)' to \(Int((reached * 100).rounded(.down)))%, not the \(percent) asked" + (fault.reserve.map { ": its reserve of \($0) stays free" } ?? "")))
            }
        }
        // Less than a size asked for is said, with the real figure, not passed off as the whole of it.
        if case .size(let asked) = fault.amount, bytes < asked.bytes {
            notes.add(FaultReport(level: .failure, message: "filled \(ByteCount(bytes: bytes)) of the \(asked) asked: that is all the room the filesystem of '\(fault.path)' had" + (fault.reserve.map { " beside the reserve of \($0)" } ?? "")))
        }
        return record
    }

    /// What apply found and `watch` says once the fault is in place.
    let notes = FaultNotes()
    /// The filesystem right after a `fillTo` fill.
    let left = FillLevel()

    /// Says what apply found; for `fillTo`, watches that the filesystem stays as full as the fill left it. Room
    /// freed during the fault (the journal's 4 MiB reserve, released to record the run when the state directory is
    /// on this filesystem; files deleted) means the fill no longer holds the asked level: that is said, with the figure.
    func watch(report: @escaping @Sendable (FaultReport) -> Void) async {
        for note in notes.take() { report(note) }
        guard let fault, case .fillTo(let asked) = fault.amount, let after = left.get() else { return }
        let slack = max(UInt64(1 << 20), after.size / 200)
        while !Task.isCancelled {
            if let now = try? Filesystem.usage(of: fault.path), now.available > after.available + slack {
                report(FaultReport(level: .failure, message: "the filesystem of '\(fault.path)' has \(ByteCount(bytes: now.available)) free again (the fill left \(ByteCount(bytes: after.available))): room was freed during the fault (the journal's reserve, when the state directory is on this filesystem, or deleted files), so it is \(Int((Double(now.used) / Double(max(now.size, 1)) * 100).rounded(.down)))% full, not the \(asked) asked"))
                return
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// The bytes the fill file really holds on its filesystem (its allocated blocks), read before it is removed.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        guard case .removeFile(let path) = record else { return nil }
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw FaultlineError(.io, "cannot read the fill file '\(path)': \(String(cString: strerror(errno)))")
        }
        let bytes = UInt64(info.st_blocks) * 512
        var detail = "'\(path)' holds \(ByteCount(bytes: bytes))"
        if let fault, let usage = try? Filesystem.usage(of: fault.path) {
            detail += "; its filesystem is \(Int((Double(usage.used) / Double(max(usage.used + usage.available, 1)) * 100).rounded(.down)))% full"
        }
        return FaultEvidence(hits: Double(bytes), unit: "bytes", detail: detail)
    }

    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState {
        guard case .removeFile(let path) = record else { return .reverted }
        if Self.containerGone(path) != nil { return .active }
        return Filesystem.exists(path) ? .active : .reverted
    }

    /// For a file reached through a container's root (`/proc/PID/root/...`) whose process is gone: the path inside
    /// the container, where the file may still be (its writable layer or volume outlives the process).
    static func containerGone(_ path: String) -> String? {
        let parts = path.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: true)
        guard parts.count == 4, parts[0] == "proc", Int32(parts[1]) != nil, parts[2] == "root" else { return nil }
        return Filesystem.exists("/proc/\(parts[1])") ? nil : "/" + parts[3]
    }

    func revert(_ record: RevertRecord) async throws(FaultlineError) {
        guard case .removeFile(let path) = record else { return }
        if let inside = Self.containerGone(path) {
            throw FaultlineError(.io, "the container whose root held '\(path)' has no process any more (stopped or restarted): the file may still be in it; remove it there, e.g. docker exec NAME rm -f \(ShellQuote.quote(inside)), then 'faultline recover --forget'")
        }
        try Filesystem.remove(path)
        if Filesystem.exists(path) {
            throw FaultlineError(.io, "'\(path)' is still there after unlink; remove it by hand: rm -f \(ShellQuote.quote(path))")
        }
    }
}

/// How full a `fillTo` fill left its filesystem, for `watch`.
final class FillLevel: Sendable {
    private let usage = Mutex<FilesystemUsage?>(nil)
    func set(_ value: FilesystemUsage) { usage.withLock { $0 = value } }
    func get() -> FilesystemUsage? { usage.withLock { $0 } }
}
