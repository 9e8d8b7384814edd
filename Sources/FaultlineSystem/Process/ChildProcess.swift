import CFaultlineShims
import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts a command as a child process that outlives the call (the stress hog), and names it for good.
/// Uses posix_spawn, not Foundation's Process, whose SIGCHLD reaping would steal swift-subprocess's children.
public enum ChildProcess {
    /// Starts `argv`; with `newSession`, in a session of its own (no terminal signals reach it).
    /// With `output`, stdout and stderr go to that file (else stdout to /dev/null, stderr inherited).
    public static func spawn(_ argv: [String], table: ProcessTable, newSession: Bool = false, output: String? = nil) throws(FaultlineError) -> ProcessIdentity {
        try spawn(argv, table: table, newSession: newSession, output: output, pipe: nil)
    }

    /// Starts `argv` with this process's stdin, stdout and stderr.
    public static func spawnInheritingOutput(_ argv: [String], table: ProcessTable) throws(FaultlineError) -> ProcessIdentity {
        try spawn(argv, table: table, newSession: false, output: nil, pipe: nil, inherit: true)
    }

    /// Starts `argv` with its stdout and stderr going to a new pipe; returns the child and the pipe's read end
    /// (close-on-exec, blocking; the caller closes it).
    public static func spawnWithPipe(_ argv: [String], table: ProcessTable, newSession: Bool = false) throws(FaultlineError) -> (ProcessIdentity, Int32) {
        var ends: [Int32] = [-1, -1]
        guard faultline_pipe_cloexec(&ends) == 0 else {
            throw FaultlineError(.commandFailed, "cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        defer { close(ends[1]) }
        do {
            let child = try spawn(argv, table: table, newSession: newSession, output: nil, pipe: ends[1])
            return (child, ends[0])
        } catch {
            close(ends[0])
            throw error
        }
    }

    static func spawn(_ argv: [String], table: ProcessTable, newSession: Bool, output: String?, pipe: Int32?,
                      inherit: Bool = false) throws(FaultlineError) -> ProcessIdentity {
        guard let program = argv.first else { throw FaultlineError(.internalError, "empty command line") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if !inherit {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            if let pipe {
                posix_spawn_file_actions_adddup2(&actions, pipe, 1)
                posix_spawn_file_actions_adddup2(&actions, pipe, 2)
            } else if let output {
                posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
                posix_spawn_file_actions_adddup2(&actions, 1, 2)
            } else {
                posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
            }
        }
        // The child starts with no blocked signals and default dispositions, whatever this process set
        // up for its own signal handling; otherwise a SIGTERM on revert could stay pending for ever.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        // POSIX_SPAWN_SETSID (glibc 2.26+) is not imported into Swift; its value is 0x80.
        let setsid: Int32 = newSession ? 0x80 : 0
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | setsid))
        var pid: pid_t = 0
        let arguments = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        let status = posix_spawnp(&pid, program, &actions, &attributes, arguments, environ)
        guard status == 0 else {
            throw FaultlineError(.commandFailed, "cannot start '\(ShellQuote.join(argv))': \(String(cString: strerror(status)))")
        }
        // posix_spawn returns once exec succeeded; wait until /proc shows the new program, or one it
        // went on to exec (`ip netns exec NS prog`), or its end (a zombie is left for the caller to reap).
        let own = table.read(getpid())?.arguments
        for _ in 0..<1000 {
            if let record = table.read(pid),
               record.state == "Z" || record.arguments.first == program || record.arguments == argv
                || (!record.arguments.isEmpty && record.arguments != own) {
                return record.identity
            }
            usleep(1_000)
        }
        throw FaultlineError(.commandFailed, "'\(ShellQuote.join(argv))' did not start")
    }

    /// Waits for our child `pid` to end and returns its exit code (128 + signal when killed).
    public static func waitForExit(_ pid: Int32) async -> Int32 {
        while true {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid {
                let signal = status & 0x7f
                return signal == 0 ? (status >> 8) & 0xff : 128 + signal
            }
            if result < 0 { return -1 }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Collects the exit of our child `pid` if it has ended; true when it is gone.
    @discardableResult
    public static func reap(_ pid: Int32) -> Bool {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        return result == pid || (result < 0 && errno == ECHILD)
    }
}
