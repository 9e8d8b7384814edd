/// What undoes one applied fault, written to the journal before the step it undoes, so that any
/// process (the runner, the guard, `faultline recover`) can revert from it alone.
public enum RevertRecord: Sendable, Hashable, Codable {
    /// Network faults: the revert argv, and the state that shows the fault is in place or gone.
    case commands(revert: [[String]], checks: [StateCheck])
    /// pause-process: the stopped processes, to resume.
    case resume([ProcessIdentity])
    /// disk-fill: the file to remove.
    case removeFile(String)
    /// cpu-stress and memory-stress: the hog process to stop.
    case stopProcess(ProcessIdentity)
    /// kill-process: nothing can be undone; the processes that were signalled.
    case signalled([ProcessIdentity])
    /// Several records undone in order (the nfqueue engine: its rules, then its delayer process).
    indirect case steps([RevertRecord])
}

/// Whether a fault is in place on the host.
public enum FaultState: Sendable, Hashable, Codable {
    case active
    case reverted
    /// Part of it is in place: what is left, in words.
    case partial(String)
}
