import FaultlineCore
import FaultlineFaults
import FaultlineProbes
import Foundation
import Synchronization

/// A fault driver that touches nothing: it records what it was asked, and fails or degrades where told to.
public final class FakeDriver: FaultDriver, Sendable {
    /// How the fake behaves.
    public struct Script: Sendable {
        /// The inject fails with this message.
        public var applyFails: String?
        /// The revert fails with this message.
        public var revertFails: String?
        /// Once in place, the fault reports that it stopped acting, with this message.
        public var degrades: String?
        /// The inject takes this long.
        public var applyDelay: Duration?
        /// What it says it acted on before its revert (packets); nil: it cannot be read.
        public var hits: Double?
        /// False: it has nothing to read at all (no evidence, no error), as a driver without an evidence source.
        public var readsEvidence: Bool

        public init(applyFails: String? = nil, revertFails: String? = nil, degrades: String? = nil, applyDelay: Duration? = nil, hits: Double? = 7,
                    readsEvidence: Bool = true) {
            self.readsEvidence = readsEvidence
            self.applyFails = applyFails
            self.revertFails = revertFails
            self.degrades = degrades
            self.applyDelay = applyDelay
            self.hits = hits
        }
    }

    public let name: String
    let script: Script
    private let calls = Mutex<[String]>([])
    /// For a revert that fails: a directory, which the run's own recovery (unlink) cannot remove either.
    let stuck: String

    public init(name: String, script: Script = Script()) {
        self.name = name
        self.script = script
        stuck = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-fake-\(name)-\(UUID().uuidString)").path
        if script.revertFails != nil { try? FileManager.default.createDirectory(atPath: stuck, withIntermediateDirectories: true) }
    }

    deinit { try? FileManager.default.removeItem(atPath: stuck) }

    /// What it was asked, in order: "apply", "revert".
    public var log: [String] { calls.withLock { $0 } }

    public func apply(journal: any RevertJournal) async throws(FaultlineError) -> RevertRecord {
        calls.withLock { $0.append("apply") }
        // What the run's own recovery does with it: nothing for a fake in place (a file that is not there is gone);
        // for one whose revert fails, a directory, which unlink cannot remove: the retry fails too.
        let record: RevertRecord = .removeFile(script.revertFails == nil ? "/nonexistent/faultline-fake-\(name)" : stuck)
        try await journal.record(record)
        if let delay = script.applyDelay { try? await Task.sleep(for: delay) }
        if let message = script.applyFails { throw FaultlineError(.commandFailed, message) }
        return record
    }

    public func verify(_ record: RevertRecord) async throws(FaultlineError) -> FaultState { .reverted }

    public func revert(_ record: RevertRecord) async throws(FaultlineError) {
        calls.withLock { $0.append("revert") }
        if let message = script.revertFails { throw FaultlineError(.commandFailed, message) }
    }

    public func evidence(_ record: RevertRecord) async throws(FaultlineError) -> FaultEvidence? {
        guard script.readsEvidence else { return nil }
        guard let hits = script.hits else { throw FaultlineError(.commandFailed, "the fake's counters are gone") }
        return FaultEvidence(hits: hits, unit: "packets", detail: "\(Int(hits)) packets dropped by the fake")
    }

    public func watch(report: @escaping @Sendable (FaultReport) -> Void) async {
        guard let message = script.degrades else { return }
        try? await Task.sleep(for: .milliseconds(20))
        report(FaultReport(level: .failure, message: message))
    }
}

/// Probes answered by a script: the outcome of each check from the probe's name and how many checks it had.
public final class ScriptedProbes: ProbeChecking, Sendable {
    let answer: @Sendable (_ probe: String, _ call: Int) -> ProbeOutcome
    let delay: @Sendable (_ probe: String, _ call: Int) -> Duration?
    private let counts = Mutex<[String: Int]>([:])

    /// `delay`: how long a check takes before its answer (a cancelled check answers at once).
    public init(delay: @escaping @Sendable (_ probe: String, _ call: Int) -> Duration? = { _, _ in nil },
                _ answer: @escaping @Sendable (_ probe: String, _ call: Int) -> ProbeOutcome) {
        self.answer = answer
        self.delay = delay
    }

    /// Always good, 5 ms.
    public static let healthy = ScriptedProbes { _, _ in .init(ok: true, latency: 0.005, detail: "status 200", status: 200) }

    /// Checks so far, per probe.
    public var calls: [String: Int] { counts.withLock { $0 } }

    public func check(_ probe: Probe) async -> ProbeOutcome {
        let call = counts.withLock { counts -> Int in
            counts[probe.name.rawValue, default: 0] += 1
            return counts[probe.name.rawValue]!
        }
        if let delay = delay(probe.name.rawValue, call) { try? await Task.sleep(for: delay) }
        return answer(probe.name.rawValue, call)
    }

    public func finish() async {}
}
