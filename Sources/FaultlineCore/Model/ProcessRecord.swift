/// One process as /proc shows it: enough to match it and to make sure a later signal hits the same process.
public struct ProcessRecord: Sendable, Hashable, Codable {
    public var pid: Int32
    public var parentPID: Int32
    /// The kernel's name for it (`comm`, at most 15 characters).
    public var name: String
    /// Its arguments; empty for kernel threads.
    public var arguments: [String]
    public var uid: UInt32
    public var user: String?
    /// The state letter of /proc/PID/stat: R, S, D, T, t, Z, ...
    public var state: String
    /// Start time in clock ticks after boot: with the pid, it names one process for good.
    public var startTime: UInt64

    public init(pid: Int32, parentPID: Int32, name: String, arguments: [String], uid: UInt32, user: String?, state: String, startTime: UInt64) {
        self.pid = pid
        self.parentPID = parentPID
        self.name = name
        self.arguments = arguments
        self.uid = uid
        self.user = user
        self.state = state
        self.startTime = startTime
    }

    public var identity: ProcessIdentity { ProcessIdentity(pid: pid, startTime: startTime, name: name) }
    public var commandLine: String { arguments.joined(separator: " ") }
    public var isStopped: Bool { state == "T" || state == "t" }
}

/// A process named for good: its pid and its start time (a reused pid has another start time).
public struct ProcessIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var pid: Int32
    public var startTime: UInt64
    public var name: String

    public init(pid: Int32, startTime: UInt64, name: String) {
        self.pid = pid
        self.startTime = startTime
        self.name = name
    }

    public var description: String { "\(name)[\(pid)]" }
}

extension ProcessMatch: CustomStringConvertible {
    /// `name 'worker', user 'app'`: the selectors, for plans and messages.
    public var description: String {
        var parts: [String] = []
        if let pid { parts.append("pid \(pid)") }
        if let pidFile { parts.append("pid in \(pidFile)") }
        if let name { parts.append("name '\(name)'") }
        if let cmdline { parts.append("cmdline /\(cmdline)/") }
        if let user { parts.append("user '\(user)'") }
        return parts.joined(separator: ", ")
    }

    /// The processes this match selects: every given selector must hold. `pidFromFile` is the pid
    /// read from `pidFile` (nil when the file is unset or unreadable, which then matches nothing).
    /// Kernel threads (and zombies: no command line), pid 1 and the processes in `protected` (Faultline's own,
    /// this process's parents) never match, not even by pid.
    public func select(from processes: [ProcessRecord], pidFromFile: Int32?, protected: Set<Int32>) -> [ProcessRecord] {
        let regex = cmdline.flatMap { try? Regex($0) }
        return processes.filter { process in
            if protected.contains(process.pid) || process.pid == 1 { return false }
            if process.arguments.isEmpty { return false }
            if let pid, process.pid != pid { return false }
            if pidFile != nil, process.pid != pidFromFile { return false }
            if let name {
                let program = process.arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 }
                if process.name != name, program != name { return false }
            }
            if let regex, (try? regex.firstMatch(in: process.commandLine)) == nil { return false }
            if let user, process.user != user, String(process.uid) != user { return false }
            return true
        }
    }
}

extension KillMode {
    /// The processes a kill in this mode hits, from those that match: all, the oldest, or one at random.
    public func pick<R: RandomNumberGenerator>(_ matches: [ProcessRecord], using generator: inout R) -> [ProcessRecord] {
        switch self {
        case .all: matches
        case .one: matches.min { ($0.startTime, $0.pid) < ($1.startTime, $1.pid) }.map { [$0] } ?? []
        case .random: matches.randomElement(using: &generator).map { [$0] } ?? []
        }
    }
}
