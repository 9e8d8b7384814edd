/// A game-day scenario: what to break, for how long, and how to tell the service still holds.
public struct Scenario: Sendable, Hashable, Codable {
    public static let apiVersion = "faultline/v1"
    public static let kind = "Scenario"

    public var apiVersion: String = Scenario.apiVersion
    public var kind: String = Scenario.kind
    public var metadata: Metadata
    public var spec: ScenarioSpec

    public init(metadata: Metadata, spec: ScenarioSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// Who and what a scenario is about.
public struct Metadata: Sendable, Hashable, Codable {
    public var name: ResourceName
    public var description: String?
    public var owner: String?
    public var runbook: String?
    public var labels: [String: String]?

    public init(name: ResourceName, description: String? = nil, owner: String? = nil, runbook: String? = nil, labels: [String: String]? = nil) {
        self.name = name
        self.description = description
        self.owner = owner
        self.runbook = runbook
        self.labels = labels
    }
}

/// The body of a scenario.
public struct ScenarioSpec: Sendable, Hashable, Codable {
    public var maxDuration: TimeSpan
    public var target: NetnsTarget?
    public var steadyState: SteadyState?
    public var notify: [NotifyHook]?
    public var faults: [Fault]

    public init(maxDuration: TimeSpan, target: NetnsTarget? = nil, steadyState: SteadyState? = nil, notify: [NotifyHook]? = nil, faults: [Fault]) {
        self.maxDuration = maxDuration
        self.target = target
        self.steadyState = steadyState
        self.notify = notify
        self.faults = faults
    }
}

/// A webhook told about the run's events (JSON, Slack-compatible `text`).
public struct NotifyHook: Sendable, Hashable, Codable {
    /// The events a hook can ask for.
    public enum Event: String, Sendable, Hashable, Codable, CaseIterable {
        case start, abort
        case revertFailed = "revert-failed"
        case end
    }

    public var url: String
    public var events: [Event] = Event.allCases

    public init(url: String, events: [Event] = Event.allCases) {
        self.url = url
        self.events = events
    }
}
