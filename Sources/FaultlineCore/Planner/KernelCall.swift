/// A step Faultline takes itself, through a kernel call, with its parameters: what the process, disk and stress
/// faults do, as exactly as the commands of the network faults. The driver acts from it; the plan shows it.
public enum KernelCall: Sendable, Hashable, Codable, CustomStringConvertible {
    /// kill(2) with `signal` to the processes `match` selects when the fault goes in (and at each `every`):
    /// every one, the oldest, or one at random (`mode`); each pid is checked against its start time first.
    case signal(signal: Signal, match: ProcessMatch, mode: KillMode)
    /// SIGSTOP to every process `match` selects, then a check that each is stopped (state T).
    case pause(match: ProcessMatch)
    /// SIGCONT to the processes the inject stopped (their pid and start time are recorded), then a check that none
    /// is still stopped.
    case resume
    /// `file` created and allocated with fallocate(2) (writes where it is unsupported) as `fill` asks, then synced.
    case fill(file: String, fill: DiskFillFault)
    /// unlink(2) of `file`, then a check that it is gone.
    case unlink(file: String)
    /// The process the inject started (`started`) stopped: SIGTERM, SIGKILL after `grace`, then a check that it has
    /// exited.
    case stop(started: StartedProcess, grace: TimeSpan)
    /// Nothing can be undone, and why.
    case nothing(why: String)

    public var description: String {
        switch self {
        case .signal(let signal, let match, let mode):
            "send \(signal) to \(mode == .all ? "every" : mode == .one ? "the oldest" : "one random") process matching \(match.description); each pid is checked against its start time first"
        case .pause(let match):
            "send SIGSTOP to every process matching \(match.description), then check each is stopped (state T)"
        case .resume:
            "send SIGCONT to the same processes (pid and start time recorded), then check none is still stopped"
        case .fill(let file, let fill):
            "create \(file) and fallocate(2) \(PlanSummary.describe(fill.amount, of: "filesystem"))" + (fill.reserve.map { ", always leaving \($0) free" } ?? "")
                + " (writes where fallocate is unsupported), then fsync"
        case .unlink(let file):
            "unlink(2) \(file), then check it is gone"
        case .stop(.delayer, let grace):
            "SIGTERM to the delayer: it lets every packet it holds go at once and exits; SIGKILL after \(grace)"
        case .stop(let started, let grace):
            "SIGTERM to the hog process, SIGKILL after \(grace), then check it has exited" + (started == .memoryHog ? " and its memory is freed" : "")
        case .nothing(let why):
            "nothing to undo: \(why)"
        }
    }
}

/// What a process started for a fault's life is (`PlanAction.start`): it picks the driver that watches and stops it.
public enum StartedProcess: String, Sendable, Hashable, Codable, CaseIterable {
    /// `faultline hog cpu`.
    case cpuHog = "cpu-hog"
    /// `faultline hog memory`.
    case memoryHog = "memory-hog"
    /// `faultline delayer`: the userspace nfqueue engine.
    case delayer
}
