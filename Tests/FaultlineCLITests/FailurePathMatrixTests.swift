import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 15's failure-path matrix: one scenario holds every fault family at once — tc (bandwidth: this kernel has no
/// sch_netem) on a veth in a test namespace, an iptables drop there, a latency through the nfqueue delayer, a pause of
/// the test's own sleepers, a disk-fill of a tmpfs the test mounted, a cpu-stress and a small memory-stress — and each
/// test ends a run one way. Each one checks every family was in place, triggers its exit, measures how long until
/// nothing is left (polling every 15 ms), and checks the journal's run is final, the exit code and the report.
/// Each prints `matrix: <path>: reverted in X ms` and the table so far (see `MatrixResults`).
@Suite(.serialized, .enabled(if: Privilege.canUseNamespaces && ["iptables-save", "ip6tables-save", "python3", "prlimit"].allSatisfy(Privilege.hasTool),
                             "needs root, ip, tc, iptables, iptables-save, nsenter, python3 and prlimit"))
struct FailurePathMatrixTests {
    /// The ways a `faultline run` ends, each with what it must give.
    enum RunnerExit: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case normalEnd = "normal end"
        case probeAbort = "probe abort"
        case sigint = "SIGINT"
        case sigterm = "SIGTERM"
        case sighup = "SIGHUP"
        case sigkillRunner = "SIGKILL of the runner"
        case sigkillRunnerAndGuard = "SIGKILL of runner and guard, then recover"
        case pipeClosed = "output pipe closed, then SIGHUP"
        case stateFilesystemFull = "state filesystem full, then SIGTERM"
        case targetGone = "target process gone (pid target; a frozen sleeper)"

        var testDescription: String { rawValue }

        /// The faults end by themselves (after 4 s) on these paths; the others hold them (30 s) long enough to be ended.
        var endsByItself: Bool { [.normalEnd, .targetGone].contains(self) }

        var signal: Int32? {
            switch self {
            case .sigint: SIGINT
            case .sigterm, .stateFilesystemFull: SIGTERM
            case .sighup, .pipeClosed: SIGHUP
            case .sigkillRunner, .sigkillRunnerAndGuard: SIGKILL
            default: nil
            }
        }

        /// The runner's exit code (128 + 9: killed).
        var exitCode: Int32 {
            switch self {
            case .normalEnd, .targetGone: 0
            case .probeAbort: 1
            case .sigkillRunner, .sigkillRunnerAndGuard: 128 + SIGKILL
            default: 130
            }
        }

        /// The run's final state in the journal (and the report's, where one is written).
        var state: RunEntry.State {
            switch self {
            case .normalEnd, .targetGone: .succeeded
            case .sigkillRunner, .sigkillRunnerAndGuard: .failed
            default: .aborted
            }
        }

        /// The runner lives to write its report.
        var writesReport: Bool { ![.sigkillRunner, .sigkillRunnerAndGuard].contains(self) }
    }

    @Test("every family through each way a `faultline run` ends: all reverted, journal final, exit code and report true",
          arguments: RunnerExit.allCases)
    func runnerExit(_ path: RunnerExit) async throws {
        try await MatrixRig.with(stateOnFill: path == .stateFilesystemFull) { rig in
            var residue = rig.residue
            var victim: ProcessIdentity?
            if path == .targetGone { victim = try await rig.namespace.start([rig.victims.program, "300"], processName: rig.victims.name) }
            if let victim { rig.spawned.add(victim.pid, child: true) }
            let file = try rig.scenario("matrix", duration: path.endsByItself ? "4s" : "30s", networkTarget: victim.map { "{pid: \($0.pid)}" } ?? "{netns: \(rig.namespace.name)}",
                                        probe: path != .targetGone, fillToFull: path == .stateFilesystemFull)
            let run = ["run", file, "--yes", "--state-dir", rig.state, "--report", rig.reports]

            // Start: a runner of ours, or (pipe closed) one under a python3 reader that closes its end of the pipe.
            let runner: ProcessIdentity, output: () -> String, exit: () async -> Int32
            if path == .pipeClosed {
                let script = rig.directory + "/closing-reader.py", log = rig.directory + "/reader.log"
                try RunSignalTests.closingReader.write(toFile: script, atomically: true, encoding: .utf8)
                let reader = try ChildProcess.spawn(["python3", script, rig.directory + "/go", TestPaths.faultline] + run, table: ProcessTable(), output: log)
                rig.spawned.add(reader.pid, child: true)
                output = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
                var pid: Int32?
                for _ in 0..<500 where pid == nil {
                    pid = output().split(separator: "\n").first { $0.hasPrefix("pid ") }.flatMap { Int32($0.dropFirst(4)) }
                    if pid == nil { try await Task.sleep(for: .milliseconds(10)) }
                }
                runner = try #require(pid.flatMap { ProcessTable().read($0)?.identity }, "the reader started no runner: \(output())")
                rig.spawned.add(runner.pid, child: false)
                exit = {
                    _ = await waitForExit(reader.pid)
                    return output().split(separator: "\n").last { $0.hasPrefix("exit ") }.flatMap { Int32($0.dropFirst(5)) } ?? -1
                }
            } else {
                let (child, log) = try rig.start(run, log: "run")
                runner = child
                output = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
                exit = { await waitForExit(child.pid) }
            }
            let firstSeen = try await residue.waitUntilInPlace(owner: runner, log: output)

            // The trigger.
            var trigger = ContinuousClock.now
            var measuredFrom = "the signal"
            var recover: ProcessIdentity?
            var exitCode: Int32?
            switch path {
            case .normalEnd, .targetGone:
                if let victim {
                    #expect(rig.pins.count == 1, "the target namespace is pinned while the run lasts")
                    _ = try? ProcessSignaller().send(.kill, to: victim)
                    _ = await ChildProcess.waitForExit(victim.pid)
                    _ = try ProcessSignaller().send(.kill, to: rig.frozen[0])
                    #expect(!FileManager.default.fileExists(atPath: "/proc/\(victim.pid)/ns/net"), "the target process is gone")
                }
                trigger = firstSeen + .seconds(4)
                measuredFrom = "the faults' planned end"
            case .probeAbort:
                trigger = .now
                _ = FileManager.default.createFile(atPath: rig.probeTrigger, contents: nil)
                measuredFrom = "the probe's failure cause (100 ms interval)"
            case .pipeClosed:
                _ = FileManager.default.createFile(atPath: rig.directory + "/go", contents: nil)
                for _ in 0..<250 where !output().contains("closed\n") { try await Task.sleep(for: .milliseconds(20)) }
                #expect(output().contains("closed\n"), "\(output())")
                trigger = .now
                kill(runner.pid, SIGHUP)
                measuredFrom = "SIGHUP after the pipe closed"
            case .sigkillRunnerAndGuard:
                rig.killGuard()
                kill(runner.pid, SIGKILL)
                exitCode = await exit()
                await residue.expectLeftWithoutItsReverter()
                trigger = .now
                recover = try rig.start(["recover", "--state-dir", rig.state], log: "recover").0
                measuredFrom = "the start of faultline recover"
            case .stateFilesystemFull:
                // The fill filled it; the journal's next write found it full and gave up its 4 MiB reserve (so the
                // fault leaves that free). The test takes that too: the reverts find no room and no reserve.
                #expect(!FileManager.default.fileExists(atPath: rig.state + "/journal.reserve"), "the journal never found its filesystem full")
                let released = rig.freeOnFill
                let free = rig.fillTheRest()
                print("matrix: state filesystem full: \(released) bytes free once the journal gave up its reserve; \(free) after the test took them")
                #expect(free < 64 << 10, "\(free) bytes still free on the state filesystem")
                trigger = .now
                kill(runner.pid, SIGTERM)
            default:
                trigger = .now
                kill(runner.pid, path.signal!)
            }
            var timing = await residue.waitUntilGone(since: trigger)
            #expect(timing.total != nil, "left 20 s after the trigger: \(timing.left); output: \(output())")
            if exitCode == nil { exitCode = await exit() }
            if let recover {
                let recovered = await waitForExit(recover.pid)
                #expect(recovered == 0, "recover: \((try? String(contentsOfFile: rig.directory + "/recover.log", encoding: .utf8)) ?? "")")
            }
            #expect(exitCode == path.exitCode, "\(output())")
            let journalled = try await Self.finalRun(state: rig.state)
            #expect(journalled.state == path.state, "\(journalled)")
            switch path {
            case .sigkillRunner:
                #expect(journalled.reason?.contains("the guard reverted 7 of 7 faults") == true, "\(journalled)")
            case .sigkillRunnerAndGuard:
                #expect(journalled.reason?.contains("recovered") == true, "\(journalled)")
            case .probeAbort:
                #expect(journalled.reason?.contains("probe 'trigger' failed") == true, "\(journalled)")
            case .sigint, .sigterm, .sighup:
                #expect(output().contains("\(path.rawValue): reverting everything, then exiting"), "\(output())")
            default: break
            }
            try Self.expectNothingJournalledLeft(state: rig.state, run: journalled.id)
            #expect(rig.pins.isEmpty, "namespace pins left: \(rig.pins)")
            if path.endsByItself, let lag = Self.injectLag(rig.report()) { timing = timing.earlier(by: lag) }
            MatrixResults.record(path.rawValue, timing, trigger: measuredFrom, of: Self.pathCount)
            if path.writesReport {
                let report = try #require(rig.report(), "no report.json: \(output())")
                #expect(report["state"] as? String == path.state.rawValue && report["exitCode"] as? Int == Int(path.exitCode), "\(report["state"] ?? "-") \(report["exitCode"] ?? "-")")
                let faults = report["faults"] as? [[String: Any]] ?? []
                // A fill to 100% of the filesystem the journal shares loses the 4 MiB the journal takes back: it is
                // reported degraded (with the figure), not as a fill that held; every other fault reverted.
                let degraded: Set<String> = path == .stateFilesystemFull ? ["fill"] : []
                #expect(faults.count == 7 && faults.allSatisfy { $0["state"] as? String == (degraded.contains($0["name"] as? String ?? "") ? "degraded" : "reverted") },
                        "\(faults.map { "\($0["name"] ?? "") \($0["state"] ?? "")" })")
                Self.expectEvidence(faults, acted: path.endsByItself)
            } else {
                #expect(rig.report() == nil, "a killed runner wrote no report; this one is from elsewhere")
            }
        }
    }

    /// Every family of the matrix says what it acted on, in its unit, read before its revert whichever way the run
    /// ended (a report is written); `acted`: more than nothing (a run stopped early may end before a fault's first
    /// packet or CPU tick).
    static func expectEvidence(_ faults: [[String: Any]], acted: Bool) {
        let units = ["shape": "packets", "cut": "packets", "slow": "packets", "freeze": "processes", "fill": "bytes", "burn": "cpu-seconds", "hog": "bytes"]
        for fault in faults {
            let name = fault["name"] as? String ?? ""
            let evidence = fault["evidence"] as? [String: Any]
            #expect(evidence?["unit"] as? String == units[name] && (evidence?["hits"] as? Double ?? -1) >= (acted ? 1e-9 : 0), "fault \(name): \(evidence ?? [:])")
        }
    }

    /// The ways a run on an agent ends, each with what the agent must say of it.
    enum AgentExit: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case controllerAbort = "controller abort"
        case leaseExpiry = "lease expiry (controller SIGKILLed, lease 2s)"
        case agentKilled = "SIGKILL of the agent, then restart"
        case agentAndGuardKilled = "SIGKILL of agent and guard, then restart"
        case descriptorExhaustion = "descriptor exhaustion (agent flooded), end"

        var testDescription: String { rawValue }

        var state: RunEntry.State {
            switch self {
            case .controllerAbort, .leaseExpiry: .aborted
            case .agentKilled, .agentAndGuardKilled: .failed
            case .descriptorExhaustion: .succeeded
            }
        }

        /// The run's exit code as the agent gives it (the restarted agent's for a killed one: nothing was left, 1).
        var exitCode: Int { self == .descriptorExhaustion ? 0 : 1 }
    }

    @Test("every family through each way a run on the agent ends: all reverted, journal final, the agent's status and report true",
          arguments: AgentExit.allCases)
    func agentExit(_ path: AgentExit) async throws {
        try await MatrixRig.with { rig in
            let token = "matrix-\(UInt64.random(in: 0 ... .max))-0123456789abcdef0123456789"
            let tokenFile = rig.directory + "/controller.token"
            _ = FileManager.default.createFile(atPath: tokenFile, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600])
            // Flooded: a hard limit of 512 open files, so 256 connections fill the agent's share (the rest is the revert's);
            // 400 fill it and its listen queue without leaving handshakes that never complete.
            let flooded = path == .descriptorExhaustion
            let agent = try await TestAgent.start(directory: rig.directory, state: rig.state, token: token,
                                                  wrapper: flooded ? ["/usr/bin/prlimit", "--nofile=512:512", "--"] : [])
            rig.spawned.add(agent.child.pid, child: true)
            let file = try rig.scenario("matrix-agent", duration: flooded ? "8s" : "30s", networkTarget: "{netns: \(rig.namespace.name)}", probe: false)
            let controller = ["--agent", agent.url, "--token-file", tokenFile]
            var submit: (process: ProcessIdentity, log: String)?
            switch path {
            case .controllerAbort: submit = try rig.start(["submit", file, "--wait"] + controller, log: "submit")
            case .leaseExpiry: submit = try rig.start(["submit", file, "--lease", "2s"] + controller, log: "submit")
            default:
                let created = try await agent.call(.POST, "/v1/runs", body: try String(contentsOfFile: file, encoding: .utf8))
                #expect(created.status == 201, "\(created.body)")
            }
            func said() -> String { agent.output + (submit.map { "\nsubmit: " + ((try? String(contentsOfFile: $0.log, encoding: .utf8)) ?? "") } ?? "") }
            var residue = rig.residue
            let firstSeen = try await residue.waitUntilInPlace(owner: agent.child, log: said)
            let runs = try await agent.call(.GET, "/v1/runs").json["runs"] as? [[String: Any]] ?? []
            let id = try #require(runs.first?["id"] as? String, "\(runs)")

            var trigger = ContinuousClock.now
            var measuredFrom = "the trigger"
            var abort: ProcessIdentity?
            var flood: ConnectionFloodTests.Flood?
            var restarted: TestAgent?
            switch path {
            case .controllerAbort:
                trigger = .now
                abort = try rig.start(["abort", id] + controller, log: "abort").0
                measuredFrom = "the start of faultline abort"
            case .leaseExpiry:
                trigger = .now
                kill(submit!.process.pid, SIGKILL)
                measuredFrom = "SIGKILL of the controller (the lease: 2 s)"
            case .agentKilled:
                trigger = .now
                kill(agent.child.pid, SIGKILL)
                measuredFrom = "SIGKILL of the agent"
            case .agentAndGuardKilled:
                rig.killGuard()
                kill(agent.child.pid, SIGKILL)
                await residue.expectLeftWithoutItsReverter()
                trigger = .now
                restarted = try await TestAgent.start(directory: rig.directory, state: rig.state, token: token)
                rig.spawned.add(restarted!.child.pid, child: true)
                measuredFrom = "the restart of the agent"
            case .descriptorExhaustion:
                flood = try await ConnectionFloodTests().startFlood(to: agent.url, count: 400, directory: rig.directory)
                rig.spawned.add(flood!.process.pid, child: true)
                let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(agent.child.pid)/fd").count) ?? 0
                print("matrix: the flooded agent holds \(descriptors) of its 512 descriptors")
                #expect(descriptors >= 256, "the flood did not take the agent's share of descriptors: \(descriptors)")
                trigger = firstSeen + .seconds(8)
                #expect(ContinuousClock.now < trigger, "the flood was not in place before the faults ended")
                measuredFrom = "the faults' planned end, flooded"
            }
            var timing = await residue.waitUntilGone(since: trigger)
            #expect(timing.total != nil, "left 20 s after the trigger: \(timing.left); \(said())")
            await flood?.stop()

            // The controller commands end once the run has: with its exit code, and 0 for the abort that waited for it.
            if let submit {
                let submitted = await waitForExit(submit.process.pid)
                #expect(submitted == (path == .leaseExpiry ? 128 + SIGKILL : 1), "submit --wait exits with the run's code: \(said())")
            }
            if let abort {
                #expect(await waitForExit(abort.pid) == 0, "\((try? String(contentsOfFile: rig.directory + "/abort.log", encoding: .utf8)) ?? "")")
            }

            // The run as the agent (or, killed, the restarted agent) gives it.
            var status: [String: Any]
            if [.agentKilled, .agentAndGuardKilled].contains(path) {
                #expect(await waitForExit(agent.child.pid) == 128 + SIGKILL)
                if restarted == nil {
                    restarted = try await TestAgent.start(directory: rig.directory, state: rig.state, token: token)
                    rig.spawned.add(restarted!.child.pid, child: true)
                }
                let again = try #require(restarted)
                status = try await again.call(.GET, "/v1/runs/\(id)").json
                #expect((status["reason"] as? String)?.contains("the agent stopped during the run") == true, "\(status)")
                #expect(rig.report(run: id) == nil, "a killed agent wrote no report; this one is from elsewhere")
                let report = try await again.call(.GET, "/v1/runs/\(id)/report")
                #expect(report.status == 404 && report.body.contains("ended without a report"), "\(report.status) \(report.body)")
                #expect(await again.stop() == 0, "\(again.output)")
            } else {
                status = try await agent.waitForRun(id, timeout: .seconds(20)) { ["succeeded", "failed", "aborted", "deviated", "inconclusive"].contains($0["state"] as? String ?? "") }
                let report = try #require(rig.report(run: id), "no report.json in the run's folder")
                #expect(report["state"] as? String == path.state.rawValue && report["exitCode"] as? Int == path.exitCode, "\(report["state"] ?? "-") \(report["exitCode"] ?? "-")")
                Self.expectEvidence(report["faults"] as? [[String: Any]] ?? [], acted: path == .descriptorExhaustion)
                #expect(ProcessTable().isAlive(agent.child), "the agent is still up: \(agent.output)")
                #expect(await agent.stop() == 0, "the agent exits 0 on SIGTERM: \(agent.output)")
            }
            #expect(status["state"] as? String == path.state.rawValue && status["exitCode"] as? Int == path.exitCode, "\(status)")
            if flooded, let lag = Self.injectLag(rig.report(run: id)) { timing = timing.earlier(by: lag) }
            MatrixResults.record(path.rawValue, timing, trigger: measuredFrom, of: Self.pathCount)
            if path == .leaseExpiry {
                #expect((status["reason"] as? String)?.contains("lease expired") == true, "\(status)")
            }
            let journalled = try await Self.finalRun(state: rig.state, id: id)
            #expect(journalled.state == path.state, "\(journalled)")
            switch path {
            case .agentKilled: #expect(journalled.reason?.contains("the guard reverted 7 of 7 faults") == true, "\(journalled)")
            case .agentAndGuardKilled: #expect(journalled.reason?.contains("recovered") == true, "\(journalled)")
            default: break
            }
            try Self.expectNothingJournalledLeft(state: rig.state, run: id)
            #expect(rig.pins.isEmpty, "namespace pins left: \(rig.pins)")
        }
    }

    static let pathCount = RunnerExit.allCases.count + AgentExit.allCases.count

    /// How long after the method's start the first fault was in place (the report's `injectedAt` of `shape`): the
    /// planned end is that much before "first seen + duration".
    static func injectLag(_ report: [String: Any]?) -> Duration? {
        let faults = report?["faults"] as? [[String: Any]] ?? []
        return (faults.first { $0["name"] as? String == "shape" }?["injectedAt"] as? Double).map { .milliseconds(Int64($0 * 1000)) }
    }

    /// The run once its journal entry is final (10 s at most).
    static func finalRun(state: String, id: String? = nil) async throws -> RunEntry {
        let journal = try Journal(directory: state)
        var run: RunEntry?
        for _ in 0..<500 {
            run = try id.map { try journal.run($0) } ?? journal.runs().last
            if run?.state.isFinal == true { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let found = try #require(run, "no run in the journal")
        #expect(found.state.isFinal, "the run is still '\(found.state.rawValue)' in the journal")
        return found
    }

    /// Every fault of the run journalled as reverted, nothing pending, no pin held.
    static func expectNothingJournalledLeft(state: String, run: String) throws {
        let journal = try Journal(directory: state)
        let faults = try journal.faults(of: run)
        #expect(faults.count == 7 && faults.allSatisfy { $0.state == .reverted }, "\(faults.map { "\($0.name) \($0.state.rawValue) \($0.error ?? "")" })")
        #expect(try journal.pendingFaults().isEmpty)
        #expect(try journal.runsWithPins().isEmpty)
    }
}
