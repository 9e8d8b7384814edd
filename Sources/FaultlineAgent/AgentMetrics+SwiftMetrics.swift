import Metrics
import Synchronization

extension AgentMetrics {
    /// Whether swift-metrics was pointed at an agent's registry in this process.
    private static let bootstrapped = Mutex(false)

    /// Points swift-metrics, for the whole process, at this agent's registry, so that `/metrics` also shows what
    /// libraries record (Hummingbird's request metrics). Once per process, as swift-metrics allows: a later call does
    /// nothing and returns false. Agents built in tests without it still have every `faultline_*` metric.
    @discardableResult
    public func bootstrapSwiftMetrics() -> Bool {
        Self.bootstrapped.withLock { done in
            guard !done else { return false }
            MetricsSystem.bootstrap(LibraryMetricsFactory(registry: registry))
            done = true
            return true
        }
    }
}
