import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fault families of the failure-path matrix: one scenario holds one fault of each.
enum MatrixFamily: String, CaseIterable, Sendable {
    case bandwidth = "tc", drop, nfqueue, pause, diskFill = "fill", cpu, memory
}

/// What the matrix scenario's faults leave, family by family: Faultline's root qdisc on eth0, its chains in the filter
/// table (drop) and the mangle table (nfqueue), the delayer and the hogs, frozen sleepers, the fill file.
struct MatrixResidue: Sendable {
    let namespace: String
    let fill: String
    let frozen: [ProcessIdentity]
    /// The run's delayer and hogs (`faultline delayer`, `faultline hog cpu|memory`), found as children of its runner.
    private(set) var helpers: [ProcessRecord] = []

    init(namespace: String, fill: String, frozen: [ProcessIdentity]) {
        self.namespace = namespace
        self.fill = fill
        self.frozen = frozen
    }

    /// What is on the host now, by family (a family with nothing is absent or empty).
    func look() async -> [MatrixFamily: [String]] {
        async let qdiscs = inside(["tc", "qdisc", "show", "dev", "eth0"])
        async let rules4 = inside(["iptables-save"])
        async let rules6 = inside(["ip6tables-save"])
        var found: [MatrixFamily: [String]] = [:]
        found[.bandwidth] = (await qdiscs).filter { $0.contains("fa17:") || $0.contains(" tbf ") || $0.hasPrefix("cannot") }
        for (table, line) in Self.faultlineRules(await rules4) + Self.faultlineRules(await rules6) {
            found[table == "mangle" ? .nfqueue : .drop, default: []].append("\(table): \(line)")
        }
        let table = ProcessTable()
        for helper in helpers where table.isAlive(helper.identity) {
            let family: MatrixFamily = helper.arguments[1] == "delayer" ? .nfqueue : helper.arguments[2] == "cpu" ? .cpu : .memory
            found[family, default: []].append("\(helper.identity) \(helper.arguments.dropFirst().prefix(2).joined(separator: " "))")
        }
        found[.pause] = frozen.compactMap { process in
            guard let now = table.read(process.pid), now.startTime == process.startTime, now.isStopped else { return nil }
            return "\(now.name)[\(now.pid)] stopped"
        }
        found[.diskFill] = ((try? FileManager.default.contentsOfDirectory(atPath: fill)) ?? []).filter { $0.hasPrefix(".faultline-fill-") }
        return found.filter { !$0.value.isEmpty }
    }

    /// Output lines of `argv` in the namespace; one line "cannot ..." when it fails (never "nothing there").
    func inside(_ argv: [String]) async -> [String] {
        do {
            let result = try await SubprocessRunner().run(["ip", "netns", "exec", namespace] + argv, timeout: .seconds(10), outputLimit: 1 << 20)
            guard result.succeeded else { return ["cannot run \(argv[0]) in \(namespace): \(result.standardError)"] }
            return result.standardOutput.split(separator: "\n").map(String.init)
        } catch {
            return ["cannot run \(argv[0]) in \(namespace): \(error)"]
        }
    }

    /// `(table, line)` for each line of an iptables-save output that names Faultline (its chains, hooks and rules).
    static func faultlineRules(_ lines: [String]) -> [(String, String)] {
        var table = "?"
        var result: [(String, String)] = []
        for line in lines {
            if line.hasPrefix("*") { table = String(line.dropFirst()) }
            if line.contains("FAULTLINE") || line.contains("faultline:") || line.hasPrefix("cannot") { result.append((table, line)) }
        }
        return result
    }

    /// Adds the delayer and hogs that `owner` (the runner or the agent) started and that are not known yet.
    mutating func adoptHelpers(of owner: Int32) {
        let known = Set(helpers.map(\.pid))
        helpers += ProcessTable().all().filter { process in
            process.parentPID == owner && !known.contains(process.pid) && process.arguments.count > 2
                && (process.arguments[1] == "delayer" || (process.arguments[1] == "hog" && ["cpu", "memory"].contains(process.arguments[2])))
        }
    }

    /// Polls until every family is in place (the nfqueue family: its chain and its delayer); returns when the first
    /// residue of the run was seen. Throws, with `log`, when that does not happen within `timeout` or `owner` ends.
    mutating func waitUntilInPlace(owner: ProcessIdentity, log: () -> String, timeout: Duration = .seconds(20)) async throws -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + timeout
        var firstSeen: ContinuousClock.Instant?
        var found: [MatrixFamily: [String]] = [:]
        while ContinuousClock.now < deadline {
            if helpers.count < 3 { adoptHelpers(of: owner.pid) }
            found = await look()
            if firstSeen == nil, !found.isEmpty { firstSeen = .now }
            let delayerUp = helpers.contains { $0.arguments[1] == "delayer" && ProcessTable().isAlive($0.identity) }
            if Set(found.keys) == Set(MatrixFamily.allCases), delayerUp, found[.nfqueue]?.contains(where: { $0.hasPrefix("mangle") }) == true {
                return firstSeen ?? .now
            }
            guard ProcessTable().isAlive(owner) else { break }
            try await Task.sleep(for: .milliseconds(15))
        }
        throw TestFailure("the families never were all in place (have: \(found.keys.map(\.rawValue).sorted())); \(owner) said: \(log())")
    }

    /// With what applied the faults and its guard killed: the delayer and the hogs end with their parent, the rest
    /// stays until someone reverts it (checked 300 ms after).
    func expectLeftWithoutItsReverter() async {
        try? await Task.sleep(for: .milliseconds(300))
        let left = await look()
        #expect(Set(left.keys) == [.bandwidth, .drop, .nfqueue, .pause, .diskFill], "\(left)")
        #expect(left[.nfqueue]?.allSatisfy { $0.hasPrefix("mangle") } == true, "the delayer ended with its parent: \(left)")
    }

    /// How long the revert took, from its trigger, in all and per family; what was left if it did not finish.
    struct Timing {
        var total: Duration?
        var families: [MatrixFamily: Duration] = [:]
        var left: [MatrixFamily: [String]] = [:]

        /// The same, measured from `offset` earlier (the trigger was estimated that much late).
        func earlier(by offset: Duration) -> Timing {
            Timing(total: total.map { $0 + offset }, families: families.mapValues { $0 + offset }, left: left)
        }

        /// `123 ms` or `-` for no figure.
        static func ms(_ duration: Duration?) -> String {
            duration.map { String(format: "%.0f ms", Double($0.components.seconds) * 1000 + Double($0.components.attoseconds) / 1e15) } ?? "-"
        }
    }

    /// Polls (15 ms apart) from `trigger` until nothing is left, at most `timeout`. A family's time is when it was
    /// last seen gone for good; each figure is an upper bound (taken once a look has finished).
    func waitUntilGone(since trigger: ContinuousClock.Instant, timeout: Duration = .seconds(20)) async -> Timing {
        var timing = Timing()
        while ContinuousClock.now - trigger < timeout {
            let found = await look()
            let at = ContinuousClock.now - trigger
            for family in MatrixFamily.allCases {
                if found[family] != nil { timing.families[family] = nil } else if timing.families[family] == nil { timing.families[family] = at }
            }
            timing.left = found
            if found.isEmpty {
                timing.total = at
                return timing
            }
            try? await Task.sleep(for: .milliseconds(15))
        }
        return timing
    }
}
