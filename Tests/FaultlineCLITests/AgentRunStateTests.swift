@testable import FaultlineAgent
import FaultlineSystem
import Foundation
import Testing

/// A scheduled run and an abort that arrive together: starting and cancelling are one compare-and-set, so either
/// the run is cancelled and never starts, or it started and the abort must stop it (no root, no processes).
@Suite struct AgentRunStateTests {
    func scheduledRun(_ directory: String) -> AgentRun {
        AgentRun(status: RunStatus(id: "5c4e0001", scenario: "race", state: .scheduled, createdAt: Date(), scheduledAt: Date(),
                                   leaseSeconds: nil, schedule: "5c4e0001", faults: []),
                 directory: directory + "/run")
    }

    func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = try makeTestDirectory("run-state")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(directory)
    }

    @Test("cancelled first: the run does not start and its locks are not kept")
    func cancelledRunNeverStarts() throws {
        try withDirectory { directory in
            let run = scheduledRun(directory)
            #expect(run.cancelIfScheduled { $0.state = .aborted })
            let locks = try ClaimLocks.take(["process 1 (started 1)"], runID: run.id, directory: directory + "/locks")
            #expect(!run.begin(holding: locks) { $0.state = .running }, "an aborted run must not start")
            #expect(run.status.state == .aborted)
        }
    }

    @Test("started first: the cancel does nothing (the caller aborts the running run instead)")
    func startedRunIsNotCancelled() throws {
        try withDirectory { directory in
            let run = scheduledRun(directory)
            let locks = try ClaimLocks.take(["process 1 (started 1)"], runID: run.id, directory: directory + "/locks")
            #expect(run.begin(holding: locks) { $0.state = .running })
            #expect(!run.cancelIfScheduled { $0.state = .aborted })
            #expect(run.status.state == .running)
        }
    }
}
