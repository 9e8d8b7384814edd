import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One fault an earlier run could not revert must not block the host: only runs that act on the same thing are
/// refused, and `recover --forget` acknowledges it after a manual cleanup.
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces, "needs root, ip, tc and nsenter"))
struct LeftoverTests {
    @Test("a revert-failed leftover blocks only a run on the same interface (exit 3, naming it); others go on; recover --forget after a manual cleanup unblocks")
    func aLeftoverBlocksOnlyWhatConflicts() async throws {
        let namespace = try await TestNamespace.create(address: "10.213.0.1/24", chatter: true)
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        do {
            let state = sleepers.directory.appendingPathComponent("state").path
            // What an earlier run left: Faultline's root qdisc on eth0, and a journal entry whose revert cannot work.
            _ = try await namespace.inside(["tc", "qdisc", "add", "dev", "eth0", "root", "handle", "fa17:", "htb"])
            let journal = try Journal(directory: state)
            let dead = ProcessIdentity(pid: Int32.max - 7, startTime: 1, name: "faultline")
            try journal.begin(RunEntry(id: "dead0001", scenario: "earlier", state: .running, startedAt: Date(), runner: dead, deadline: Date()))
            let record = RevertRecord.commands(revert: [["/bin/false"]],
                                               checks: [.rootQdisc(namespace: "/run/netns/\(namespace.name)", device: "eth0", previous: nil)])
            try journal.record(runID: "dead0001", fault: "slow-eth0", type: .bandwidth, state: .active, record: record)

            func run(_ faults: String, target: Bool) async throws -> CommandResult {
                let file = sleepers.directory.appendingPathComponent("s-\(UInt32.random(in: 0 ... .max)).yaml").path
                try """
                    apiVersion: faultline/v1
                    kind: Scenario
                    metadata: {name: after-leftover}
                    spec:
                      maxDuration: 10s
                    \(target ? "  target: {netns: \(namespace.name)}\n" : "")  faults:
                    \(faults)
                    """.write(toFile: file, atomically: true, encoding: .utf8)
                return try await SubprocessRunner().run([TestPaths.faultline, "run", file, "--yes", "--state-dir", state], timeout: .seconds(60), outputLimit: 1 << 20)
            }

            // recover itself still says what is left: exit 4.
            let recover = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(recover.exitCode == 4, "\(recover.standardError)")
            #expect(recover.standardError.contains("faultline recover --forget RUN [FAULT]"), "\(recover.standardError)")

            // A run that touches something else goes on.
            let victim = try sleepers.start()
            let other = try await run("    - {name: freeze, type: pause-process, duration: 300ms, match: {name: \(sleepers.name)}}", target: false)
            #expect(other.exitCode == 0, "\(other.standardError)")
            #expect(other.standardError.contains("run dead0001 left 'slow-eth0' in place, which this run does not touch"), "\(other.standardError)")
            #expect(sleepers.state(victim) == "S")

            // A run on the same interface is refused before anything is applied, with what to do.
            let shaping = "    - {name: slow, type: bandwidth, interface: eth0, rate: 1mbit, duration: 300ms}"
            let refused = try await run(shaping, target: true)
            #expect(refused.exitCode == 3, "\(refused.standardError)")
            #expect(refused.standardError.contains("'slow' acts on interface eth0 in net:["), "\(refused.standardError)")
            #expect(refused.standardError.contains("faultline recover --forget dead0001 slow-eth0"), "\(refused.standardError)")
            #expect(refused.standardError.contains("nothing was applied"))

            // An agent on the same state directory refuses it too: 409 naming the dead run and what to do.
            let scenario = agentScenario("agent-after-leftover", target: namespace.name, faults: shaping)
            try await withTestAgent(directory: sleepers.directory.path, state: state) { agent in
                let conflict = try await agent.call(.POST, "/v1/runs", body: scenario)
                #expect(conflict.status == 409, "\(conflict.body)")
                let error = conflict.json["error"] as? [String: Any] ?? [:]
                #expect(error["heldBy"] as? String == "dead0001", "\(conflict.body)")
                #expect((error["message"] as? String)?.contains("where run dead0001 left 'slow-eth0' in place (its revert failed") == true, "\(conflict.body)")
            }
            let qdiscsAfterAgent = try await namespace.inside(["tc", "qdisc", "show", "dev", "eth0"]).standardOutput
            #expect(qdiscsAfterAgent.contains("fa17:") && !qdiscsAfterAgent.contains("tbf"), "nothing applied: \(qdiscsAfterAgent)")

            // The operator cleans up by hand and acknowledges it; the journal keeps the entry, marked forgotten.
            _ = try await namespace.inside(["tc", "qdisc", "del", "dev", "eth0", "root"])
            let forget = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--forget", "dead0001", "slow-eth0", "--state-dir", state],
                                                          timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(forget.exitCode == 0, "\(forget.standardError)")
            let entry = try #require(try Journal(directory: state).faults(of: "dead0001").first)
            #expect(entry.state == .forgotten && entry.error?.contains("after a manual cleanup") == true)
            let audit = try #require(try Journal(directory: state).auditEntries().last, "the --forget is in the audit log")
            #expect(audit.action == "forget" && audit.target == "dead0001/slow-eth0" && audit.token == "local:root" && audit.result == "ok: slow-eth0")
            let clean = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(clean.exitCode == 0, "\(clean.standardError)")
            let again = try await run(shaping, target: true)
            #expect(again.exitCode == 0, "\(again.standardError)")

            // --keep-runs 1: the older finished runs go (their journal rows and folders), the dead run too now that
            // what it left is acknowledged; the newest stays.
            let finished = try Journal(directory: state).runs().filter(\.state.isFinal)
            #expect(Set(finished.map(\.id)).count == 3 && finished.contains { $0.id == "dead0001" }, "\(finished.map(\.id))")
            let pruned = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--keep-runs", "1", "--state-dir", state],
                                                          timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(pruned.exitCode == 0, "\(pruned.standardError)")
            let left = try Journal(directory: state).runs()
            let newest = try #require(finished.max { $0.startedAt < $1.startedAt })
            #expect(left.map(\.id) == [newest.id], "\(left.map(\.id))")
            let folders = try FileManager.default.contentsOfDirectory(atPath: state + "/runs")
            #expect(folders == [newest.id], "\(folders)")
            let bad = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--keep-runs", "0", "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(bad.exitCode == 2 && bad.standardError.contains("--keep-runs must be at least 1"), "\(bad.standardError)")
        } catch {
            await namespace.remove()
            throw error
        }
        await namespace.remove()
    }

    @Test("two runs started at the same instant on one interface: one runs, the other refuses before applying anything (exit 3, naming the run that holds it)")
    func twoRunsOnOneInterface() async throws {
        let namespace = try await TestNamespace.create(address: "10.213.0.1/24", chatter: true)
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        do {
            let state = sleepers.directory.appendingPathComponent("state").path
            var children: [(ProcessIdentity, String)] = []
            for index in 0..<2 {
                let file = sleepers.directory.appendingPathComponent("same-\(index).yaml").path
                try agentScenario("same-interface-\(index)", maxDuration: "10s", target: "\(namespace.name)", faults: "    - {name: slow, type: bandwidth, interface: eth0, rate: 1mbit, duration: 2s}").write(toFile: file, atomically: true, encoding: .utf8)
                let log = sleepers.directory.appendingPathComponent("same-\(index).log").path
                children.append((try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--state-dir", state], table: ProcessTable(), output: log), log))
            }
            var exits: [Int32] = []
            for (child, _) in children { exits.append(await ChildProcess.waitForExit(child.pid)) }
            let logs = children.map { (try? String(contentsOfFile: $0.1, encoding: .utf8)) ?? "" }
            #expect(exits.sorted() == [0, 3], "\(exits): \(logs)")
            let refused = logs[exits.firstIndex(of: 3) ?? 0]
            #expect(refused.contains("acts on interface eth0 in net:[") && refused.contains("holds now") && refused.contains("nothing was applied"), "\(refused)")
            #expect(!refused.contains("earlier run"), "a live run is not described as a leftover: \(refused)")
            let qdiscs = try await namespace.inside(["tc", "qdisc", "show", "dev", "eth0"]).standardOutput
            #expect(!qdiscs.contains("fa17:"), "\(qdiscs)")
        } catch {
            await namespace.remove()
            throw error
        }
        await namespace.remove()
    }

    @Test("an agent run and a 'faultline run' on one state directory exclude each other: whichever comes second refuses (exit 3 or 409 naming the holder), nothing applied")
    func agentAndCLIRunsExcludeEachOther() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let sleeper = try sleepers.start()
        let directory = try makeTestDirectory("exclusion")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let state = directory + "/state"
        let file = directory + "/freeze.yaml"
        try agentScenario("freeze", faults: pauseFault("freeze", sleepers: sleepers, duration: "20s")).write(toFile: file, atomically: true, encoding: .utf8)
        try await withTestAgent(directory: directory, state: state) { agent in
            // The agent holds the sleeper: a CLI run on the same state directory refuses.
            let submitted = try await agent.call(.POST, "/v1/runs", body: try String(contentsOfFile: file, encoding: .utf8))
            #expect(submitted.status == 201, "\(submitted.body)")
            let id = try #require(submitted.json["id"] as? String)
            _ = try await agent.waitForRun(id) { (($0["faults"] as? [[String: Any]])?.first?["state"] as? String) == "active" }
            let refused = try await SubprocessRunner().run([TestPaths.faultline, "run", file, "--yes", "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
            #expect(refused.exitCode == 3, "\(refused.standardError)")
            #expect(refused.standardError.contains("acts on process \(sleeper.pid) (started \(sleeper.startTime)), which run \(id) (pid \(agent.child.pid)) holds now"), "\(refused.standardError)")
            #expect(refused.standardError.contains("nothing was applied"))
            #expect(try await agent.call(.POST, "/v1/runs/\(id)/abort").status == 200)
            _ = try await agent.waitForRun(id) { ($0["state"] as? String) == "aborted" }

            // A CLI run holds the sleeper: the agent answers 409 naming it.
            let log = directory + "/cli.log"
            let runner = try ChildProcess.spawn([TestPaths.faultline, "run", file, "--yes", "--state-dir", state], table: ProcessTable(), output: log)
            var exited = false
            defer { if !exited { kill(runner.pid, SIGKILL); _ = ChildProcess.reap(runner.pid) } }
            let deadline = ContinuousClock.now + .seconds(15)
            while sleepers.state(sleeper) != "T", ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(sleepers.state(sleeper) == "T", "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
            let cliRun = try #require(try Journal(directory: state).runs().last { $0.state == .running }?.id)
            let conflict = try await agent.call(.POST, "/v1/runs", body: try String(contentsOfFile: file, encoding: .utf8))
            #expect(conflict.status == 409, "\(conflict.body)")
            let error = conflict.json["error"] as? [String: Any] ?? [:]
            #expect(error["heldBy"] as? String == cliRun, "\(conflict.body)")
            #expect((error["message"] as? String)?.contains("which run \(cliRun) (pid \(runner.pid)) holds now") == true, "\(conflict.body)")
            kill(runner.pid, SIGINT)
            #expect(await waitForExit(runner.pid) == 130)
            exited = true
            #expect(sleepers.state(sleeper) != "T")
        }
    }

    @Test("a journal entry whose revert record cannot be read is a failed revert that says so (exit 4), not 'nothing to recover'")
    func anUnreadableRecordIsLoud() async throws {
        let sleepers = try TestSleepers()
        defer { sleepers.removeAll() }
        let state = sleepers.directory.appendingPathComponent("state").path
        let journal = try Journal(directory: state)
        let dead = ProcessIdentity(pid: Int32.max - 9, startTime: 1, name: "faultline")
        try journal.begin(RunEntry(id: "dead0002", scenario: "newer", state: .running, startedAt: Date(), runner: dead, deadline: Date()))
        try journal.record(runID: "dead0002", fault: "future-fault", type: .drop, state: .active, record: .removeFile("/nonexistent/x"))
        // As a newer faultline might have written it: a record this one cannot decode.
        let edit = try await SubprocessRunner().run(["/usr/bin/python3", "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE fault SET record = '{\\\"teleport\\\": {}}'\"); c.commit()",
            state + "/journal.sqlite"], timeout: .seconds(10), outputLimit: 1 << 16)
        try #require(edit.succeeded, "\(edit.standardError)")
        let recover = try await SubprocessRunner().run([TestPaths.faultline, "recover", "--state-dir", state], timeout: .seconds(30), outputLimit: 1 << 20)
        #expect(recover.exitCode == 4, "\(recover.standardOutput)\(recover.standardError)")
        #expect(recover.standardError.contains("revert record of fault 'future-fault' of run dead0002 cannot be read"), "\(recover.standardError)")
        #expect(!recover.standardOutput.contains("nothing to recover"))
    }
}
