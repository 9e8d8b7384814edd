import FaultlineCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Reads the process table from /proc.
public struct ProcessTable: Sendable {
    let procRoot: String

    public init(procRoot: String = "/proc") { self.procRoot = procRoot }

    /// Every process now running (those that vanish while being read are skipped).
    public func all() -> [ProcessRecord] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: procRoot)) ?? []
        return entries.compactMap { Int32($0) }.sorted().compactMap(read)
    }

    /// One process, or nil if it is gone.
    public func read(_ pid: Int32) -> ProcessRecord? {
        guard let statText = FileBytes.text("\(procRoot)/\(pid)/stat"), let parsed = Self.parseStat(statText) else { return nil }
        let cmdline = FileBytes.read("\(procRoot)/\(pid)/cmdline") ?? []
        var arguments = cmdline.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        if arguments.last == "" { arguments.removeLast() }
        let status = FileBytes.text("\(procRoot)/\(pid)/status") ?? ""
        let uid = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }
            .flatMap { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first }
            .flatMap { UInt32($0) } ?? 0
        // NSpid lists its PID in each PID namespace from the outermost in: the last is its container's view.
        let nested = status.split(separator: "\n").first { $0.hasPrefix("NSpid:") }
            .map { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { Int32($0) } } ?? []
        var namespace = stat()
        let pidNamespace = stat("\(procRoot)/\(pid)/ns/pid", &namespace) == 0 ? UInt64(namespace.st_ino) : nil
        return ProcessRecord(pid: pid, parentPID: parsed.parentPID, name: parsed.name, arguments: arguments,
                             uid: uid, user: Self.userName(uid), state: parsed.state, startTime: parsed.startTime,
                             pidNamespace: pidNamespace, namespacePID: nested.count > 1 ? nested.last : nil)
    }

    /// The CPU time `identity` used (its own and its waited-for children's, user and system) and its peak resident
    /// memory; nil once it is gone.
    public func usage(_ identity: ProcessIdentity) -> (cpuSeconds: Double, peakResidentBytes: UInt64)? {
        guard let statText = FileBytes.text("\(procRoot)/\(identity.pid)/stat"),
              let parsed = Self.parseStat(statText), parsed.startTime == identity.startTime,
              let close = statText.lastIndex(of: ")") else { return nil }
        let fields = statText[statText.index(after: close)...].split(separator: " ")
        // utime(14) stime(15) cutime(16) cstime(17): indexes 11 to 14 after the name.
        let ticks = fields[11...14].compactMap { Double($0) }.reduce(0, +)
        let status = FileBytes.text("\(procRoot)/\(identity.pid)/status") ?? ""
        let peak = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
            .flatMap { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first }
            .flatMap { UInt64($0) }.map { $0 * 1024 } ?? 0
        return (ticks / Double(max(sysconf(Int32(_SC_CLK_TCK)), 1)), peak)
    }

    /// Fields of /proc/PID/stat; the name sits in parentheses and may itself contain spaces or ')'.
    static func parseStat(_ text: String) -> (name: String, state: String, parentPID: Int32, startTime: UInt64)? {
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")") else { return nil }
        let name = String(text[text.index(after: open)..<close])
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the name: state(3) ppid(4) ... starttime(22), so index 0 is field 3.
        guard fields.count > 19, let parent = Int32(fields[1]), let start = UInt64(fields[19]) else { return nil }
        return (name, String(fields[0]), parent, start)
    }

    /// The user names looked up lately: /proc is read often (every process match, every liveness check) and each
    /// lookup reads /etc/passwd or asks NSS. Kept 10 s, so a user made or renamed since shows soon after.
    static let userNames = Mutex<(at: ContinuousClock.Instant, names: [UInt32: String?])>((.now, [:]))

    static func userName(_ uid: UInt32) -> String? {
        let now = ContinuousClock.now
        if let known = userNames.withLock({ cache -> String?? in
            if now - cache.at > .seconds(10) { cache = (now, [:]) }
            return cache.names[uid]
        }) { return known }
        let name = lookUpUserName(uid)
        userNames.withLock { $0.names[uid] = .some(name) }
        return name
    }

    static func lookUpUserName(_ uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return nil }
        return String(cString: name)
    }

    /// Whether `identity` still runs: same pid and start time, and not a zombie.
    public func isAlive(_ identity: ProcessIdentity) -> Bool {
        guard let now = read(identity.pid) else { return false }
        return now.startTime == identity.startTime && now.state != "Z" && now.state != "X"
    }

    /// This process and its ancestors: never the target of a process fault.
    public func protectedPIDs() -> Set<Int32> {
        var protected: Set<Int32> = [getpid()]
        var pid = getppid()
        while pid > 1, !protected.contains(pid) {
            protected.insert(pid)
            guard let parent = read(pid)?.parentPID else { break }
            pid = parent
        }
        protected.insert(1)
        return protected
    }

    /// Every Faultline process running now — any run's runner, guard, delayer or hog, and the agent: those whose
    /// name (comm) is `faultline` or whose executable is this one. Process faults never hit them.
    public func faultlinePIDs() -> Set<Int32> {
        var mine = stat()
        let known = stat("\(procRoot)/self/exe", &mine) == 0
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: procRoot)) ?? []
        var result: Set<Int32> = []
        for pid in entries.compactMap({ Int32($0) }) {
            if let comm = FileBytes.text("\(procRoot)/\(pid)/comm"),
               comm.trimmingCharacters(in: .newlines) == "faultline" {
                result.insert(pid)
                continue
            }
            var other = stat()
            if known, stat("\(procRoot)/\(pid)/exe", &other) == 0, other.st_dev == mine.st_dev, other.st_ino == mine.st_ino {
                result.insert(pid)
            }
        }
        return result
    }

    /// The PID on the first line of a pid file (PostgreSQL's postmaster.pid has more lines after it).
    public static func pid(fromFile path: String) -> Int32? {
        guard let text = FileBytes.text(path) else { return nil }
        let first = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return Int32(first.trimmingCharacters(in: .whitespaces))
    }
}

extension ProcessMatch {
    /// The PID in `pidFile` (read inside the container's root when the match is confined to one); nil when unset or unreadable.
    public func pidFromFile() -> Int32? {
        guard let pidFile else { return nil }
        guard let container else { return ProcessTable.pid(fromFile: pidFile) }
        guard let inside = try? Filesystem.resolve(pidFile, inRoot: container.root) else { return nil }
        return ProcessTable.pid(fromFile: container.root + inside)
    }
}
