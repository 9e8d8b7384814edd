import FaultlineCore
@testable import FaultlineFaults
import FaultlineSystem
import FaultlineTestSupport
import Testing

/// The network driver's error paths, with a recording runner standing in for tc and iptables.
@Suite struct NetworkDriverUnitTests {
    static let planned = PlannedFault(
        name: "cut", type: .drop, target: "this host", summary: "", start: .zero, end: .seconds(60), every: nil,
        mechanism: "iptables", exemptions: [],
        inject: [.command(["iptables", "-N", "C"]), .command(["iptables", "-A", "C", "-j", "DROP"]), .command(["iptables", "-I", "OUTPUT", "1", "-j", "C"])],
        revert: [.command(["iptables", "-D", "OUTPUT", "-j", "C"]), .command(["iptables", "-F", "C"]), .command(["iptables", "-X", "C"])],
        checks: [.chain(namespace: nil, tool: "iptables", chain: "C")])

    /// A fake iptables: commands listed in `failing` fail; `iptables -w 5 -S` shows chain C while `chainExists` says so.
    final class FakeTables: Sendable {
        let chainExists: Mutex<Bool>
        let failing: Set<[String]>
        init(chainExists: Bool, failing: Set<[String]> = []) {
            self.chainExists = Mutex(chainExists)
            self.failing = failing
        }

        var runner: RecordingRunner {
            RecordingRunner { argv in
                if argv == ["iptables", "-w", "5", "-t", "filter", "-S"] {
                    return CommandResult(argv: argv, exitCode: 0, standardOutput: self.chainExists.withLock { $0 } ? "-P INPUT ACCEPT\n-N C\n" : "-P INPUT ACCEPT\n")
                }
                if self.failing.contains(argv) { return CommandResult(argv: argv, exitCode: 1, standardError: "iptables: Bad rule.") }
                if argv == ["iptables", "-N", "C"] { self.chainExists.withLock { $0 = true } }
                if argv == ["iptables", "-X", "C"] { self.chainExists.withLock { $0 = false } }
                return CommandResult(argv: argv, exitCode: 0)
            }
        }
    }

    @Test func aFailedInjectStepUndoesTheStepsBeforeItAndSaysWhy() async throws {
        let tables = FakeTables(chainExists: false, failing: [["iptables", "-A", "C", "-j", "DROP"]])
        let runner = tables.runner
        let driver = NetworkDriver(planned: Self.planned, context: DriverContext(runner: runner, protected: []))
        let journal = MemoryJournal()
        await #expect(throws: FaultlineError.self) { _ = try await driver.apply(journal: journal) }
        #expect(journal.all.count == 1, "the revert record was journalled before the first command")
        let commands = runner.commands.filter { $0 != ["iptables", "-w", "5", "-t", "filter", "-S"] }
        #expect(commands == [["iptables", "-N", "C"], ["iptables", "-A", "C", "-j", "DROP"],
                             ["iptables", "-D", "OUTPUT", "-j", "C"], ["iptables", "-F", "C"], ["iptables", "-X", "C"]])
        #expect(tables.chainExists.withLock { $0 } == false)
    }

    @Test func revertingWhatIsAlreadyGoneSucceeds() async throws {
        let tables = FakeTables(chainExists: false, failing: [["iptables", "-D", "OUTPUT", "-j", "C"], ["iptables", "-F", "C"], ["iptables", "-X", "C"]])
        let driver = NetworkDriver(planned: Self.planned, context: DriverContext(runner: tables.runner, protected: []))
        try await driver.revert(.commands(revert: Self.planned.revert.compactMap { if case .command(let a) = $0 { a } else { nil } }, checks: Self.planned.checks))
    }

    @Test("a revert runs its iptables commands as one iptables-restore per family; when the batch fails (a rule already gone), each command runs alone")
    func theRevertIsOneBatchAndFallsBackRuleByRule() async throws {
        let revert = [["iptables", "-w", "5", "-D", "OUTPUT", "-j", "C"], ["iptables", "-w", "5", "-F", "C"], ["iptables", "-w", "5", "-X", "C"]]
        let record = RevertRecord.commands(revert: revert, checks: [])
        let batch = ["iptables-restore", "-w", "5", "--noflush"]
        let fine = RecordingRunner()
        try await NetworkDriver(planned: nil, context: DriverContext(runner: fine, protected: [])).revert(record)
        #expect(fine.commands == [batch], "one process for the whole revert")
        #expect(fine.standardInputs[batch.joined(separator: " ")] == "*filter\n-D OUTPUT -j C\n-F C\n-X C\nCOMMIT\n")
        let failing = RecordingRunner { argv in CommandResult(argv: argv, exitCode: argv == batch ? 2 : 0, standardError: argv == batch ? "Error occurred at line: 2" : "") }
        try await NetworkDriver(planned: nil, context: DriverContext(runner: failing, protected: [])).revert(record)
        #expect(failing.commands == [batch] + revert, "the batch, then rule by rule")
    }

    @Test func aRevertThatLeavesStateBehindFailsAndSaysHowToClean() async throws {
        let tables = FakeTables(chainExists: true, failing: [["iptables", "-X", "C"]])
        let driver = NetworkDriver(planned: Self.planned, context: DriverContext(runner: tables.runner, protected: []))
        let record = RevertRecord.commands(revert: Self.planned.revert.compactMap { if case .command(let a) = $0 { a } else { nil } }, checks: Self.planned.checks)
        do {
            try await driver.revert(record)
            Issue.record("revert should fail while the chain is still there")
        } catch {
            #expect(error.message.contains("iptables chain C exists"))
            #expect(error.message.contains("iptables -X C"))
        }
    }
}

import Synchronization
