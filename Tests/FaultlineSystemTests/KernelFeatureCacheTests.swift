import FaultlineCore
@testable import FaultlineSystem
import FaultlineTestSupport
import Synchronization
import Testing

/// A long-lived agent's preflight: kernel features seen working are not tried again for a while; missing ones are.
@Suite struct KernelFeatureCacheTests {
    let scenario: Scenario
    let capabilities = ProcessCapabilities(effective: [Capability.netAdmin.rawValue, Capability.sysAdmin.rawValue, Capability.netRaw.rawValue],
                                           permitted: [], bounding: [])

    init() throws {
        scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: cached}
            spec:
              maxDuration: 1m
              faults:
                - {name: f, type: drop, probability: 30%, to: {ports: [9999], protocol: tcp}}
            """, file: "cached.yaml")
    }

    /// A clock the test moves.
    final class Clock: Sendable {
        let offset = Mutex<Duration>(.zero)
        let start = ContinuousClock.now
        var now: @Sendable () -> ContinuousClock.Instant { { [self] in start + offset.withLock { $0 } } }
    }

    func scratchNamespaces(_ runner: RecordingRunner) -> Int { runner.commands.filter { $0.starts(with: ["ip", "netns", "add"]) }.count }

    @Test("features that worked are not tried again within the lifetime, and are after it")
    func workingFeaturesAreRemembered() async {
        let runner = RecordingRunner()
        let clock = Clock()
        let cache = KernelFeatureCache(lifetime: .seconds(600), now: clock.now)
        let preflight = Preflight(runner: runner, capabilities: capabilities, featureCache: cache)
        let first = await preflight.check(scenario)
        #expect(scratchNamespaces(runner) == 1)
        let kernelChecks = first.checks.filter { $0.kind == .kernel }
        #expect(!kernelChecks.isEmpty && kernelChecks.allSatisfy { $0.status == .ok }, "\(kernelChecks)")
        let tried = runner.commands.count

        clock.offset.withLock { $0 = .seconds(599) }
        let second = await preflight.check(scenario)
        #expect(runner.commands.count == tried, "nothing run again: \(runner.commands.dropFirst(tried))")
        #expect(second.checks == first.checks)

        clock.offset.withLock { $0 = .seconds(601) }
        _ = await preflight.check(scenario)
        #expect(scratchNamespaces(runner) == 2, "tried again after the lifetime")
    }

    @Test("a missing feature is tried at every check, and found as soon as it works")
    func missingFeaturesAreTriedAgain() async {
        let statisticWorks = Mutex(false)
        let runner = RecordingRunner { argv in
            let failing = argv.contains("statistic") && !statisticWorks.withLock { $0 }
            return CommandResult(argv: argv, exitCode: failing ? 1 : 0, standardError: failing ? "Couldn't load match `statistic'" : "")
        }
        let cache = KernelFeatureCache()
        let preflight = Preflight(runner: runner, capabilities: capabilities, featureCache: cache)
        let statistic = KernelFeature.iptablesStatistic.rawValue
        #expect(await preflight.check(scenario).checks.first { $0.name == statistic }?.status == .missing)
        #expect(await preflight.check(scenario).checks.first { $0.name == statistic }?.status == .missing)
        #expect(scratchNamespaces(runner) == 2)
        // The second time only the missing ones are tried (the iptables statistic match, and ip6tables, whose trial
        // uses it), after the trial that makes the chain they build on; conntrack, which worked, is not.
        let probes = runner.commands.split { $0.starts(with: ["ip", "netns", "add"]) }
            .map { $0.filter { $0.starts(with: ["ip", "netns", "exec"]) }.map { Array($0.dropFirst(4)) } }
        let missing = [KernelFeature.iptablesComment, .iptablesStatistic, .ip6tables].flatMap(\.trial)
        #expect(probes.count == 2 && probes[1] == missing, "\(probes)")
        #expect(probes.first?.contains(KernelFeature.iptablesConntrack.trial[0]) == true, "\(probes)")
        statisticWorks.withLock { $0 = true }
        #expect(await preflight.check(scenario).checks.first { $0.name == statistic }?.status == .ok)
        #expect(await preflight.check(scenario).checks.allSatisfy { $0.status != .missing })
        #expect(scratchNamespaces(runner) == 3, "nothing tried once all worked")
    }
}
