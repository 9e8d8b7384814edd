/// The state of a run, the same from the journal to the report, the agent's API and its metrics. The raw values are
/// what every file and API shows.
public enum RunState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Waiting for its time (the agent only).
    case scheduled
    case running
    /// Stopping: its faults are being reverted.
    case reverting
    /// Every fault acted, the steady state held, everything was reverted (exit 0).
    case succeeded
    /// The steady state broke (exit 1).
    case deviated
    /// Stopped early: an abort condition, an inject that failed, the controller, a lease, a shutdown (exit 1), or a
    /// signal to the runner (exit 130).
    case aborted
    /// A revert failed, or it could not start (exit 4, or 3).
    case failed
    /// The steady state held, but a fault did not fully act or a probe has no result from the method: it proved
    /// nothing (exit 5).
    case inconclusive

    /// Over: nothing of it runs any more.
    public var isFinal: Bool { ![.scheduled, .running, .reverting].contains(self) }

    /// The states a finished run can have, in the order the metrics list them.
    public static let results: [RunState] = [.succeeded, .deviated, .aborted, .failed, .inconclusive]
}

/// What became of one fault of a run, the same in the journal, the runner, the report, the agent's API and its
/// metrics. The raw values are what every file and API shows.
public enum FaultRunState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Its run has not reached it yet (the agent's status before and during the run).
    case pending
    /// Its revert record is journalled and its commands may be under way (the journal only).
    case applying
    /// In place.
    case active
    /// Undone, and checked gone.
    case reverted
    /// Undone, but it did not fully act while in place (its engine ended early, less was filled than asked).
    case degraded
    /// Its inject failed; whatever part of it was applied was undone.
    case failed
    /// Its revert failed: something of it may still be in place.
    case revertFailed = "revert-failed"
    /// The run ended before its time came.
    case notInjected = "not-injected"
    /// A failed revert a person cleaned up by hand and acknowledged (`faultline recover --forget`; the journal only).
    case forgotten

    /// Whether something of it may be on the host.
    public var mayBeActive: Bool { [.applying, .active, .revertFailed].contains(self) }

    /// Over for good: it will not be injected (again) in this run.
    public var isSettled: Bool { [.reverted, .degraded, .failed, .revertFailed, .forgotten].contains(self) }
}

/// Why a run was stopped before its method's end: a label of `faultline_aborts_total`, and the report's `abortCause`.
public enum AbortCause: String, Sendable, Hashable, Codable, CaseIterable {
    /// An abort condition of the steady state (consecutive failures, burn rate).
    case condition
    /// A fault could not be injected.
    case injectFailed = "inject-failed"
    /// The controller asked (`faultline abort`, `DELETE /v1/runs/{id}`).
    case controller
    /// The controller asked for every run (`faultline abort --all`).
    case abortAll = "abort-all"
    /// The controller's lease was not renewed in time.
    case lease
    /// The agent is shutting down.
    case shutdown
}
