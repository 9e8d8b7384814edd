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
    /// The identity (inode) of its PID namespace, when it could be read.
    public var pidNamespace: UInt64?
    /// Its PID in its own PID namespace (the last of /proc/PID/status `NSpid`), when it differs from `pid`.
    public var namespacePID: Int32?

    public init(pid: Int32, parentPID: Int32, name: String, arguments: [String], uid: UInt32, user: String?, state: String, startTime: UInt64,
                pidNamespace: UInt64? = nil, namespacePID: Int32? = nil) {
        self.pid = pid
        self.parentPID = parentPID
        self.name = name
        self.arguments = arguments
        self.uid = uid
        self.user = user
        self.state = state
        self.startTime = startTime
        self.pidNamespace = pidNamespace
        self.namespacePID = namespacePID
    }

    public var identity: ProcessIdentity { ProcessIdentity(pid: pid, startTime: startTime, name: name, namespacePID: namespacePID) }
    public var commandLine: String { arguments.joined(separator: " ") }
    public var isStopped: Bool { state == "T" || state == "t" }
}

/// A process named for good: its pid and its start time (a reused pid has another start time).
public struct ProcessIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var pid: Int32
    public var startTime: UInt64
    public var name: String
    /// Its PID inside its container (its own PID namespace), when it differs: shown beside the host's.
    public var namespacePID: Int32?

    public init(pid: Int32, startTime: UInt64, name: String, namespacePID: Int32? = nil) {
        self.pid = pid
        self.startTime = startTime
        self.name = name
        self.namespacePID = namespacePID
    }

    /// `app[4242]`, or `app[4242, 1 in its container]`.
    public var description: String { "\(name)[\(pid)\(namespacePID.map { ", \($0) in its container" } ?? "")]" }

    /// "web[412], web[433] and 3 more": the first five of `processes`.
    public static func listed(_ processes: [ProcessIdentity]) -> String {
        let shown = processes.prefix(5).map(\.description).joined(separator: ", ")
        return processes.count > 5 ? "\(shown) and \(processes.count - 5) more" : shown
    }
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
        if let container { parts.append("in \(container.container)") }
        return parts.joined(separator: ", ")
    }

    /// The processes this match selects: every given selector must hold. `pidFromFile` is the pid
    /// read from `pidFile` (nil when the file is unset or unreadable, which then matches nothing).
    /// Kernel threads (and zombies: no command line), pid 1 and the processes in `protected` (Faultline's own,
    /// this process's parents) never match, not even by pid. Confined to a container, only the processes of its PID
    /// namespace match, and `pid` (and the one in `pidFile`) is a PID as the container sees it.
    public func select(from processes: [ProcessRecord], pidFromFile: Int32?, protected: Set<Int32>) -> [ProcessRecord] {
        let regex = cmdline.flatMap { try? Regex($0) }
        return processes.filter { process in
            if protected.contains(process.pid) || process.pid == 1 { return false }
            if process.arguments.isEmpty { return false }
            if let container, process.pidNamespace != container.pidNamespace { return false }
            let seen = container == nil ? process.pid : (process.namespacePID ?? process.pid)
            if let pid, seen != pid { return false }
            if pidFile != nil, seen != pidFromFile { return false }
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
