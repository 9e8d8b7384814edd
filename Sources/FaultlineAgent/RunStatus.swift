import FaultlineCore
import FaultlineEngine
import Foundation

/// A run as the API shows it (`GET /v1/runs/{id}`).
public struct RunStatus: Codable, Sendable, Hashable {
    /// SPEC §3 run states.
    public typealias State = RunState

    public var id: String
    public var scenario: String
    public var state: State
    public var createdAt: Date
    /// When a scheduled run is due.
    public var scheduledAt: Date?
    public var startedAt: Date?
    public var endedAt: Date?
    /// The exit code `faultline run` would have had (SPEC §2), once the run is over.
    public var exitCode: Int32?
    /// Why it was aborted or failed.
    public var reason: String?
    /// When the controller's lease runs out unless renewed.
    public var leaseExpiresAt: Date?
    public var leaseSeconds: Double?
    /// The schedule that started it.
    public var schedule: String?
    public var faults: [FaultStatus]
    /// Each probe's results so far (every phase), once the method has begun.
    public var probes: [RunSnapshot.Probe]?
    /// The SLO's error budget used and burn rate so far, when the scenario has an SLO.
    public var slo: RunSnapshot.SLO?

    /// One fault of the run.
    public struct FaultStatus: Codable, Sendable, Hashable {
        public var name: String
        public var type: String
        public var target: String
        /// pending, active, reverted, degraded, failed, revert-failed, not-injected.
        public var state: FaultRunState
        public var injectedAt: Date?
        public var revertedAt: Date?
        public var error: String?
        /// What shows it acted, read just before its revert.
        public var evidence: FaultEvidence?
    }
}

/// One line of a run's event stream (SSE `data:`), numbered from 1.
public struct RunStreamEvent: Codable, Sendable, Hashable {
    public var seq: Int
    public var ts: Date
    public var level: RunEvent.Level
    public var event: RunEvent.Name
    public var message: String
    public var fault: String?
    public var probe: String?

    public init(seq: Int, ts: Date, level: RunEvent.Level, event: RunEvent.Name, message: String, fault: String? = nil, probe: String? = nil) {
        self.seq = seq
        self.ts = ts
        self.level = level
        self.event = event
        self.message = message
        self.fault = fault
        self.probe = probe
    }

    enum CodingKeys: String, CodingKey { case seq, ts, level, event, message, fault, probe }

    /// Names and levels another version may have added read as `other` and `info`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        seq = try container.decode(Int.self, forKey: .seq)
        ts = try container.decode(Date.self, forKey: .ts)
        level = RunEvent.Level(rawValue: try container.decode(String.self, forKey: .level)) ?? .info
        event = RunEvent.Name(rawValue: try container.decode(String.self, forKey: .event)) ?? .other
        message = try container.decode(String.self, forKey: .message)
        fault = try container.decodeIfPresent(String.self, forKey: .fault)
        probe = try container.decodeIfPresent(String.self, forKey: .probe)
    }
}

/// The answer to `POST /v1/runs`.
public struct SubmitResponse: Codable, Sendable {
    public var id: String
    public var state: RunStatus.State
    public var scheduledAt: Date?
    public var schedule: String?
}

/// The body of `POST /v1/schedules`.
public struct ScheduleRequest: Codable, Sendable {
    /// The scenario, YAML or JSON text.
    public var scenario: String
    /// A 5-field cron expression or @hourly, @daily, ...
    public var cron: String
    /// IANA time zone name; default UTC.
    public var timeZone: String?
    /// Each run's lease, e.g. "30s".
    public var lease: String?
    /// The schedule's id, chosen by the controller so that a fleet's agents share it (`ScheduleID`); when
    /// absent the agent makes one.
    public var id: String?

    public init(scenario: String, cron: String, timeZone: String?, lease: String?, id: String? = nil) {
        self.scenario = scenario
        self.cron = cron
        self.timeZone = timeZone
        self.lease = lease
        self.id = id
    }
}

/// A schedule as the API shows it.
public struct ScheduleStatus: Codable, Sendable, Hashable {
    public var id: String
    public var kind: String
    public var scenario: String
    public var cron: String?
    public var timeZone: String
    public var at: Date?
    public var nextAt: Date?
    public var leaseSeconds: Double?
    public var state: String
    public var createdAt: Date
    public var lastRunID: String?
    public var lastFiredAt: Date?
    /// Why the last firing started no run (none of the scenario's pods runs on this agent's node); absent once one
    /// starts.
    public var lastSkipReason: String?
    /// Times it was due while the agent was down; they were not run late.
    public var missed: [Date]
}
