/// A POSIX signal known to Linux, written `SIGKILL`, `KILL` or `9`.
public struct Signal: TextValue {
    public let number: Int32

    /// Linux signal numbers (x86-64, arm64 and most other architectures).
    public static let names: [(String, Int32)] = [
        ("SIGHUP", 1), ("SIGINT", 2), ("SIGQUIT", 3), ("SIGILL", 4), ("SIGTRAP", 5), ("SIGABRT", 6),
        ("SIGBUS", 7), ("SIGFPE", 8), ("SIGKILL", 9), ("SIGUSR1", 10), ("SIGSEGV", 11), ("SIGUSR2", 12),
        ("SIGPIPE", 13), ("SIGALRM", 14), ("SIGTERM", 15), ("SIGSTKFLT", 16), ("SIGCHLD", 17),
        ("SIGCONT", 18), ("SIGSTOP", 19), ("SIGTSTP", 20), ("SIGTTIN", 21), ("SIGTTOU", 22), ("SIGURG", 23),
        ("SIGXCPU", 24), ("SIGXFSZ", 25), ("SIGVTALRM", 26), ("SIGPROF", 27), ("SIGWINCH", 28),
        ("SIGIO", 29), ("SIGPWR", 30), ("SIGSYS", 31),
    ]

    public static let kill = Signal(number: 9)
    public static let term = Signal(number: 15)
    public static let stop = Signal(number: 19)
    public static let cont = Signal(number: 18)

    init(number: Int32) { self.number = number }

    public init(parsing text: String) throws(ValueError) {
        if let number = Int32(text) {
            guard Self.names.contains(where: { $0.1 == number }) else {
                throw ValueError("unknown signal number \(text) (use 1–31 or a name like SIGTERM)")
            }
            self.number = number
            return
        }
        let upper = text.uppercased()
        let full = upper.hasPrefix("SIG") ? upper : "SIG" + upper
        guard let match = Self.names.first(where: { $0.0 == full }) else {
            let suggestion = Spelling.suggest(full, among: Self.names.map(\.0))
            throw ValueError("unknown signal '\(text)'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? ""))
        }
        number = match.1
    }

    /// `SIGKILL`.
    public var name: String { Self.names.first { $0.1 == number }?.0 ?? "SIG\(number)" }
    public var description: String { name }
}
