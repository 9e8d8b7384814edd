import FaultlineCore

/// Where a started process's standard output and error go.
public enum ProcessOutput: Sendable, Hashable {
    /// /dev/null (standard error inherited).
    case discard
    /// Both into this file (created or truncated, mode 0600).
    case file(String)
    /// Both into a pipe whose read end the launcher gives back (`LaunchedProcess.output`).
    case pipe
    /// This process's own standard input, output and error.
    case inherit
}

/// A process started to live beyond the call that started it.
public struct LaunchedProcess: Sendable {
    public var identity: ProcessIdentity
    /// The lines it writes, with `.pipe`.
    public var output: LineReader?

    public init(identity: ProcessIdentity, output: LineReader? = nil) {
        self.identity = identity
        self.output = output
    }
}

/// The one way Faultline starts processes: commands that run to their end (tc, iptables, nsenter: `run`), and
/// processes that live for a fault's or a run's life (a stress hog, the nfqueue delayer, the guard: `start`), with
/// their end collected. Tests give a fake.
public protocol ProcessLauncher: CommandRunner {
    /// Starts `argv`; with `newSession`, in a session of its own (no terminal signal reaches it). Returns once it runs.
    func start(_ argv: [String], output: ProcessOutput, newSession: Bool) throws(FaultlineError) -> LaunchedProcess
    /// Waits for a child this launcher started to end; its exit code (128 + signal when killed, -1 when it is not ours).
    func waitForExit(_ pid: Int32) async -> Int32
    /// Collects a child's end if it has ended; true when it is gone.
    @discardableResult
    func reap(_ pid: Int32) -> Bool
}

extension ProcessLauncher {
    public func start(_ argv: [String], output: ProcessOutput = .discard) throws(FaultlineError) -> LaunchedProcess {
        try start(argv, output: output, newSession: false)
    }

    /// Collects a child's end, waiting for it `within` at most (a guard that leaves once its run ended); true when gone.
    @discardableResult
    public func reap(_ pid: Int32, within: Duration) async -> Bool {
        let deadline = ContinuousClock.now + within
        while !reap(pid) {
            if ContinuousClock.now >= deadline { return false }
            // Cancelled, the sleep returns at once: give up rather than spin.
            do { try await Task.sleep(for: .milliseconds(5)) } catch { return reap(pid) }
        }
        return true
    }
}

/// The production launcher: commands through swift-subprocess, long-lived processes through posix_spawn (not
/// Foundation's Process, whose SIGCHLD reaping would steal swift-subprocess's children).
public struct SystemLauncher: ProcessLauncher {
    let table: ProcessTable
    let commands = SubprocessRunner()

    public init(table: ProcessTable = ProcessTable()) {
        self.table = table
    }

    public func run(_ argv: [String], timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        try await commands.run(argv, timeout: timeout, outputLimit: outputLimit)
    }

    public func run(_ argv: [String], input: String, timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        try await commands.run(argv, input: input, timeout: timeout, outputLimit: outputLimit)
    }

    public func start(_ argv: [String], output: ProcessOutput, newSession: Bool) throws(FaultlineError) -> LaunchedProcess {
        switch output {
        case .discard:
            return LaunchedProcess(identity: try ChildProcess.spawn(argv, table: table, newSession: newSession))
        case .file(let path):
            return LaunchedProcess(identity: try ChildProcess.spawn(argv, table: table, newSession: newSession, output: path))
        case .inherit:
            return LaunchedProcess(identity: try ChildProcess.spawn(argv, table: table, newSession: newSession, output: nil, pipe: nil, inherit: true))
        case .pipe:
            let (child, fd) = try ChildProcess.spawnWithPipe(argv, table: table, newSession: newSession)
            return LaunchedProcess(identity: child, output: LineReader(fd: fd))
        }
    }

    public func waitForExit(_ pid: Int32) async -> Int32 { await ChildProcess.waitForExit(pid) }

    public func reap(_ pid: Int32) -> Bool { ChildProcess.reap(pid) }
}
