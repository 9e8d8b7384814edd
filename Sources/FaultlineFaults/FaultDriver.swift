import FaultlineCore
import FaultlineSystem
import Synchronization

/// Where a driver writes what undoes its next step, before taking it (the write-ahead journal).
public protocol RevertJournal: Sendable {
    func record(_ record: RevertRecord) async throws(FaultlineError)
}

/// Applies one fault type, tells whether it is in place, and undoes it (safely, any number of times).
public protocol FaultDriver: Sendable {
    /// Applies the fault. Each revert record goes to `journal` before the step it undoes; the last one is returned.
    func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord
    /// Whether the fault described by `record` is in place now.
    func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState
    /// Undoes `record` and checks the host is back; what is already gone counts as undone.
    func revert(_ record: RevertRecord) async throws(FaultlineError)
    /// Reports what happens to the fault while it is in place (a userspace engine's warnings and
    /// statistics) until it ends or the task is cancelled. Most faults have nothing to say.
    func watch(report: @escaping @Sendable (FaultReport) -> Void) async
    /// What shows the fault described by `record` acted, read while it is still in place (its rules' counters go
    /// with its chain): packets, processes, bytes, CPU time. Nil when the driver has nothing to read; throws when
    /// it cannot be read.
    func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence?
}

extension FaultDriver {
    public func watch(report: @escaping @Sendable (FaultReport) -> Void) async {}
    public func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? { nil }
}

/// A line a fault's engine reports while it runs.
public struct FaultReport: Sendable, Hashable {
    /// `failure`: the fault stopped acting, or never fully acted (the run must not say it held).
    public enum Level: Sendable, Hashable { case info, warning, failure }
    public var level: Level
    public var message: String

    public init(level: Level, message: String) {
        self.level = level
        self.message = message
    }
}

/// What the drivers share: how to run commands, start processes and see them.
public struct DriverContext: Sendable {
    /// Runs the commands that apply and revert network faults (the launcher, unless a test records them).
    public var runner: any CommandRunner
    /// Starts the processes that live for a fault's life (a stress hog, the nfqueue delayer) and the guard.
    public var launcher: any ProcessLauncher
    public var processes: ProcessTable
    public var signaller: ProcessSignaller
    /// Processes never hit by a process fault: faultline itself and its parents.
    public var protected: Set<Int32>

    public init(runner: (any CommandRunner)? = nil, launcher: (any ProcessLauncher)? = nil, processes: ProcessTable = ProcessTable(),
                protected: Set<Int32>? = nil) {
        let launcher = launcher ?? SystemLauncher(table: processes)
        self.launcher = launcher
        self.runner = runner ?? launcher
        self.processes = processes
        self.signaller = ProcessSignaller(table: processes)
        self.protected = protected ?? processes.protectedPIDs()
    }
}

/// Picks the driver for a fault (to apply it) or for a journal record (to revert it).
public enum Drivers {
    /// The driver of a planned fault, from its plan alone: a process it starts (the delayer, a hog), a kernel call
    /// it makes (signal, pause, fill), else the commands of a network fault.
    public static func driver(for planned: PlannedFault, context: DriverContext) -> any FaultDriver {
        for action in planned.inject {
            switch action {
            case .start(_, .delayer): return DelayerDriver(planned: planned, context: context)
            case .start(let argv, .cpuHog), .start(let argv, .memoryHog):
                var grace = TimeSpan.seconds(5)
                for case .call(.stop(_, let stopGrace)) in planned.revert { grace = stopGrace }
                return StressDriver(argv: argv, context: context, grace: .microseconds(grace.microseconds), memory: action == .start(argv, .memoryHog))
            case .call(.signal(let signal, let match, let mode)):
                return KillProcessDriver(fault: KillProcessFault(match: match, signal: signal, mode: mode), context: context, tally: SignalTally())
            case .call(.pause(let match)): return PauseProcessDriver(match: match, context: context)
            case .call(.fill(let file, let fill)): return DiskFillDriver(fault: fill, file: file, context: context)
            case .command, .batch, .call: continue
            }
        }
        return NetworkDriver(planned: planned, context: context)
    }

    /// A driver that can verify and revert `record` without the scenario (recovery after a crash).
    public static func driver(for record: RevertRecord, context: DriverContext) -> any FaultDriver {
        switch record {
        case .commands: NetworkDriver(planned: nil, context: context)
        case .resume: PauseProcessDriver(match: ProcessMatch(), context: context)
        case .removeFile(let path): DiskFillDriver(fault: nil, file: path, context: context)
        case .stopProcess: StressDriver(argv: [], context: context)
        case .signalled: KillProcessDriver(fault: nil, context: context, tally: nil)
        case .steps: StepsDriver(context: context)
        case .inNamespace: PinnedNamespaceDriver(context: context)
        }
    }
}

/// Reports a driver's `apply` found, kept for its `watch` to say.
final class FaultNotes: Sendable {
    private let notes = Mutex<[FaultReport]>([])
    func add(_ note: FaultReport) { notes.withLock { $0.append(note) } }
    func take() -> [FaultReport] { notes.withLock { notes in defer { notes.removeAll() }; return notes } }
}
