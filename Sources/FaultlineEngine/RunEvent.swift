import FaultlineCore
import Foundation

/// Something that happened during a run: what the log prints, the agent's event stream carries, webhooks, Grafana
/// and metrics act on. Subscribers switch on the cases; the name and message are for people and files.
public enum RunEvent: Sendable, Hashable {
    public enum Level: String, Sendable, Codable, CaseIterable, Comparable {
        case debug, info, warning, error

        public static func < (lhs: Level, rhs: Level) -> Bool {
            allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
        }
    }

    /// The names events have in the log's `event` field, the agent's event stream and its SSE `event:` lines.
    public enum Name: String, Sendable, Codable, CaseIterable {
        case start, method, inject
        case injectFailed = "inject-failed"
        case revert
        case revertFailed = "revert-failed"
        case degraded, engine, evidence, probe, abort, interrupted, deviated, after, end
        case journal, pin, `guard`, recover, recovered, leftover, forgotten, notify, audit
        case schedule
        case scheduleMissed = "schedule-missed"
        case scheduled, shutdown, listening
        /// A line of the agent's own, not of a run.
        case agent
        /// What another version sent under a name this one does not know.
        case other
    }

    /// The run began: the steady state is checked before the method.
    case started(run: String, scenario: String, traceID: String?)
    /// The method began: its faults go in on their timeline.
    case methodStarted(faults: Int, maxDuration: TimeSpan)
    /// A fault is in place (`again`: a repeat of `every`).
    case injected(fault: String, summary: String, again: Bool)
    /// A fault could not be injected (`again`: a repeat found nothing to hit, which stops nothing).
    case injectFailed(fault: String, error: String, again: Bool)
    /// A fault was undone and checked gone (`by`: who, when not the runner: the guard).
    case reverted(fault: String, seconds: Double?, by: String? = nil)
    /// A fault's revert failed: something of it may be left.
    case revertFailed(fault: String, error: String, seconds: Double?)
    /// A fault did not fully act while in place.
    case degraded(fault: String, why: String)
    /// What shows a fault acted, read just before its revert (zero hits: it did nothing).
    case evidence(fault: String, evidence: FaultEvidence)
    /// A fault's userspace engine reported something.
    case engine(fault: String, level: Level, message: String)
    /// One probe result (debug: the log shows it only at that level; metrics count it).
    case probed(probe: String, phase: RunReport.ProbeSample.Phase, ok: Bool, latency: Double)
    /// A probe failed outside the method (before or after it).
    case probeFailed(probe: String, phase: RunReport.ProbeSample.Phase, detail: String)
    /// A probe of the method began failing, or passes again.
    case probeChanged(probe: String, ok: Bool)
    /// The run is stopping before its end: an abort condition (naming its probe), an inject that failed, the
    /// controller, a lease, a shutdown.
    case aborted(cause: AbortCause, reason: String, probe: String?)
    /// The run ended.
    case ended(run: String, state: RunState, exitCode: Int32, reason: String?)
    /// Anything else worth a line; nothing acts on it.
    case note(Level, Name, String, fault: String? = nil, probe: String? = nil)

    public var level: Level {
        switch self {
        case .started, .methodStarted, .injected, .reverted: .info
        case .evidence(_, let evidence): evidence.hits > 0 ? .info : .warning
        case .injectFailed(_, _, let again): again ? .warning : .error
        case .revertFailed, .degraded, .aborted: .error
        case .engine(_, let level, _): level
        case .probed: .debug
        case .probeFailed: .warning
        case .probeChanged(_, let ok): ok ? .info : .warning
        case .ended(_, _, let exit, _): exit == 0 ? .info : .error
        case .note(let level, _, _, _, _): level
        }
    }

    public var name: Name {
        switch self {
        case .started: .start
        case .methodStarted: .method
        case .injected: .inject
        case .injectFailed: .injectFailed
        case .reverted: .revert
        case .revertFailed: .revertFailed
        case .degraded: .degraded
        case .evidence: .evidence
        case .engine: .engine
        case .probed, .probeFailed, .probeChanged: .probe
        case .aborted: .abort
        case .ended: .end
        case .note(_, let name, _, _, _): name
        }
    }

    public var message: String {
        switch self {
        case .started(let run, let scenario, let trace):
            "run \(run) of \(scenario)\(trace.map { " (trace \($0))" } ?? ""): checking the steady state before the method"
        case .methodStarted(let faults, let maxDuration): "the method starts: \(faults) fault(s) over at most \(maxDuration)"
        case .injected(_, let summary, let again): again ? "again: \(summary)" : "injected: \(summary)"
        case .injectFailed(_, let error, let again): again ? "repeat found nothing to hit: \(error)" : "could not inject: \(error)"
        case .reverted(_, _, let by): by.map { "reverted by the \($0)" } ?? "reverted"
        case .revertFailed(_, let error, _): "revert failed: \(error)"
        case .degraded(_, let why): "the fault did not fully act: \(why)"
        case .evidence(_, let evidence):
            evidence.hits > 0 ? "acted on \(evidence.amount): \(evidence.detail)" : "acted on nothing: \(evidence.detail)"
        case .engine(_, _, let message): message
        case .probed(_, let phase, let ok, let latency): "\(phase.rawValue): \(ok ? "ok" : "failed") in \(Int((latency * 1000).rounded()))ms"
        case .probeFailed(_, let phase, let detail): "\(phase.rawValue): \(detail)"
        case .probeChanged(_, let ok): ok ? "passing again" : "failing"
        case .aborted(_, let reason, _): "abort: \(reason)"
        case .ended(let run, let state, let exit, let reason): "run \(run) \(state.rawValue) (exit \(exit))" + (reason.map { ": \($0)" } ?? "")
        case .note(_, _, let message, _, _): message
        }
    }

    /// The fault it is about.
    public var fault: String? {
        switch self {
        case .injected(let fault, _, _), .injectFailed(let fault, _, _), .reverted(let fault, _, _), .revertFailed(let fault, _, _),
             .degraded(let fault, _), .evidence(let fault, _), .engine(let fault, _, _):
            fault
        case .note(_, _, _, let fault, _): fault
        default: nil
        }
    }

    /// The probe it is about.
    public var probe: String? {
        switch self {
        case .probed(let probe, _, _, _), .probeFailed(let probe, _, _), .probeChanged(let probe, _): probe
        case .aborted(_, _, let probe): probe
        case .note(_, _, _, _, let probe): probe
        default: nil
        }
    }

    /// How long the step took, in seconds, where it is measured (reverts).
    public var duration: Double? {
        switch self {
        case .reverted(_, let seconds, _), .revertFailed(_, _, let seconds): seconds
        default: nil
        }
    }
}

/// Writes run events to stderr, as text lines or as one JSON object per line (SPEC §4).
public struct EventLog: Sendable {
    public enum Format: String, Sendable, CaseIterable { case text, json }

    let format: Format
    let run: String
    let scenario: String
    let minimum: RunEvent.Level
    let write: @Sendable (String) -> Void
    let observe: (@Sendable (RunEvent, Date) -> Void)?

    /// `observe` sees every event, whatever the level (the agent keeps them for its event stream and metrics).
    public init(format: Format, run: String, scenario: String, minimum: RunEvent.Level = .info,
                observe: (@Sendable (RunEvent, Date) -> Void)? = nil, write: @escaping @Sendable (String) -> Void) {
        self.format = format
        self.run = run
        self.scenario = scenario
        self.minimum = minimum
        self.observe = observe
        self.write = write
    }

    /// The same log, with `extra` seeing every event too (after the observer it had).
    public func observed(by extra: @escaping @Sendable (RunEvent, Date) -> Void) -> EventLog {
        let first = observe
        return EventLog(format: format, run: run, scenario: scenario, minimum: minimum,
                        observe: { event, date in first?(event, date); extra(event, date) }, write: write)
    }

    public func log(_ event: RunEvent) {
        let now = Date()
        observe?(event, now)
        guard event.level >= minimum else { return }
        switch format {
        case .json:
            var object: [String: String] = [
                "ts": ISO8601DateFormatter.withFractions.string(from: now), "level": event.level.rawValue, "msg": event.message,
                "run": run, "scenario": scenario, "event": event.name.rawValue,
            ]
            object["fault"] = event.fault
            object["probe"] = event.probe
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                write(String(decoding: data, as: UTF8.self) + "\n")
            }
        case .text:
            let time = ISO8601DateFormatter.timeOnly.string(from: now)
            let subject = event.fault.map { "[\($0)] " } ?? event.probe.map { "(\($0)) " } ?? ""
            write("\(time) \(event.level == .info ? "" : event.level.rawValue.uppercased() + " ")\(subject)\(event.message)\n")
        }
    }
}

extension ISO8601DateFormatter {
    // nonisolated(unsafe): configured once, then only used to format, which Foundation allows from any thread.
    nonisolated(unsafe) static let withFractions: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    nonisolated(unsafe) static let timeOnly: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withTime, .withColonSeparatorInTime]
        return formatter
    }()
}
