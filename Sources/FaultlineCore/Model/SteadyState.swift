/// What "the service is fine" means: probes, an SLO over their results, and when to give up.
public struct SteadyState: Sendable, Hashable, Codable {
    public var probes: [Probe]
    public var slo: SLO?
    public var abortWhen: AbortConditions?
    /// After the last revert, how long the probes may take to come back (checked until they all pass, at most this
    /// long); without it, one check after the method.
    public var recoveryWindow: TimeSpan?

    public init(probes: [Probe] = [], slo: SLO? = nil, abortWhen: AbortConditions? = nil, recoveryWindow: TimeSpan? = nil) {
        self.probes = probes
        self.slo = slo
        self.abortWhen = abortWhen
        self.recoveryWindow = recoveryWindow
    }

    /// The longest recovery window a scenario may ask for.
    public static let maximumRecoveryWindow = TimeSpan.seconds(3600)
}

/// The service level the hypothesis requires of probe results.
public struct SLO: Sendable, Hashable, Codable {
    /// Share of good probe results required (e.g. 99%).
    public var objective: Percent
    /// An http or tcp result slower than this counts as bad.
    public var latency: TimeSpan?

    public init(objective: Percent, latency: TimeSpan? = nil) {
        self.objective = objective
        self.latency = latency
    }
}

/// Conditions that abort the run and revert everything at once; any one suffices.
public struct AbortConditions: Sendable, Hashable, Codable {
    /// Failures in a row of any single probe.
    public var consecutiveFailures: Int?
    public var burnRate: BurnRate?

    public init(consecutiveFailures: Int? = nil, burnRate: BurnRate? = nil) {
        self.consecutiveFailures = consecutiveFailures
        self.burnRate = burnRate
    }
}

/// Abort when the bad share within `window` exceeds `factor` × (1 − objective).
public struct BurnRate: Sendable, Hashable, Codable {
    public var factor: Double
    public var window: TimeSpan

    public init(factor: Double, window: TimeSpan) {
        self.factor = factor
        self.window = window
    }
}
