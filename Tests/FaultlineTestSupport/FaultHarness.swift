import FaultlineCore
import FaultlineSystem
import Synchronization

/// A write-ahead journal kept in memory, for tests.
public final class MemoryJournal: Sendable {
    private let records = Mutex<[RevertRecord]>([])
    public init() {}
    public var all: [RevertRecord] { records.withLock { $0 } }
    public func append(_ record: RevertRecord) { records.withLock { $0.append(record) } }
}

/// Runs every command inside a namespace, as an agent living there would (its own namespace is that one).
public struct NamespacedRunner: CommandRunner {
    public let namespace: String
    let base = SubprocessRunner()

    public init(namespace: String) { self.namespace = namespace }

    public func run(_ argv: [String], timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        var result = try await base.run(["ip", "netns", "exec", namespace] + argv, timeout: timeout, outputLimit: outputLimit)
        result.argv = argv
        return result
    }

    public func run(_ argv: [String], input: String, timeout: Duration, outputLimit: Int) async throws(FaultlineError) -> CommandResult {
        var result = try await base.run(["ip", "netns", "exec", namespace] + argv, input: input, timeout: timeout, outputLimit: outputLimit)
        result.argv = argv
        return result
    }
}

/// Loads a scenario from text and plans it against the facts of this host.
public enum ScenarioHarness {
    public static func plan(_ yaml: String, runID: String = "t2t2t2t2", runner: any CommandRunner = SubprocessRunner(),
                            agentPort: UInt16? = nil, executable: String? = nil) async throws -> (Scenario, Plan) {
        let scenario = try ScenarioLoader.load(yaml: yaml, file: "test.yaml")
        var facts = await HostFactsReader(runner: runner).read(for: scenario, agentPort: agentPort)
        if let executable { facts.executable = executable }
        let plan = Planner(facts: facts).plan(scenario, runID: runID)
        guard plan.problems.isEmpty else { throw TestFailure("plan problems: \(plan.problems)") }
        return (scenario, plan)
    }

    public static func scenario(maxDuration: String = "5m", target: String? = nil, faults: String) -> String {
        """
        apiVersion: faultline/v1
        kind: Scenario
        metadata: {name: driver-test}
        spec:
          maxDuration: \(maxDuration)
        \(target.map { "  target: {netns: \($0)}\n" } ?? "")  faults:
        \(faults)
        """
    }
}
