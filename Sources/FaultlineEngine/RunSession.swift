import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import FaultlineProbes
import FaultlineSystem
import Foundation
import Tracing

/// One run from start to report, the same for `faultline run` and the agent: what earlier runs left is reverted,
/// the host's facts are read, the scenario is planned and checked, what it acts on is locked, the method runs with
/// its couriers (webhooks, Grafana), and the reports are written. The caller decides only how to ask (a prompt, an
/// API call) and how to answer (exit codes, HTTP statuses).
public struct RunSession: Sendable {
    /// Where the run keeps its state and what it tells the world.
    public struct Settings: Sendable {
        /// The state directory: journal, pins, locks, each run's folder (`runs/ID`, with the guard's log).
        public var stateDirectory: String
        /// The faultline executable that the guard and the namespaced probe helpers run; nil: this process's own.
        public var executable: String?
        /// What the guard gets after `guard --run ID` (the state directory, the log format and level).
        public var guardArguments: [String] = []
        /// Without a guard process (in-process tests): only this process reverts.
        public var guarded = true
        /// The agent's API port, which network faults never touch.
        public var agentPort: UInt16?
        /// Where the run's spans go; nil: no traces.
        public var tracer: (any Tracer)?
        /// Webhook URLs told about every event, besides the scenario's own (`--notify`).
        public var notify: [String] = []
        /// Grafana annotations of each fault window and abort.
        public var grafana: GrafanaAnnotator.Settings?
        /// The container runtime's socket container targets are found through; nil: the usual places.
        public var runtimeSocket: String?
        /// How long after maxDuration the guard reverts even if the runner still lives.
        public var grace: TimeSpan = .seconds(30)
        /// The driver that applies a planned fault (tests give fakes).
        public var drivers: @Sendable (PlannedFault, DriverContext) -> any FaultDriver = { planned, context in
            Drivers.driver(for: planned, context: context)
        }
        /// What checks the probes (tests give fakes); nil: the real probes, inside the target namespace if any.
        public var probes: (@Sendable (Scenario, String) -> any ProbeChecking)?
        /// How the host's facts are read (tests give them); nil: read from this host.
        public var facts: (@Sendable (Scenario, HostFactsReader.PinSettings) async -> HostFacts)?
        /// How the preflight is checked (tests give it); nil: checked on this host.
        public var preflight: (@Sendable (Scenario) async -> PreflightReport)?

        public init(stateDirectory: String) {
            self.stateDirectory = stateDirectory
        }
    }

    /// Why a run cannot start; nothing was applied. The first are the most basic.
    public enum Refusal: Sendable, Hashable, CustomStringConvertible {
        /// A target namespace of a network fault cannot be pinned for the run.
        case cannotHold(target: String, why: String)
        /// A fault acts on what an earlier run left in place (its revert failed).
        case leftover(LeftoverConflict)
        /// The plan cannot be carried out (a target or interface not found, a filter that cannot be built...).
        case planProblem(String)
        /// The preflight found something missing (a capability, a tool, a kernel feature).
        case preflight(String)

        public var description: String {
            switch self {
            case .cannotHold(let target, let why):
                "cannot hold \(target) for the run (\(why)): run as root, or with CAP_SYS_ADMIN and CAP_SYS_PTRACE"
            case .leftover(let conflict): conflict.description
            case .planProblem(let problem), .preflight(let problem): problem
            }
        }
    }

    /// A run going on now holds a lock on what this one acts on; nothing was applied.
    public struct Locked: Error, Sendable, CustomStringConvertible {
        public var fault: String
        public var claim: String
        /// "run ID (pid N)", as the holder wrote it.
        public var holder: String
        /// The holder's run id, when it wrote one.
        public var holderRun: String? { holder.hasPrefix("run ") ? String(holder.dropFirst(4).prefix { $0 != " " }) : nil }
        /// The locks could not be taken at all (their directory), why.
        public var failure: String?

        public var description: String {
            if let failure { return "cannot take the run's locks: \(failure)" }
            return "'\(fault)' acts on \(claim), which \(holder) holds now: wait for it to end or abort it"
        }
    }

    /// The run planned and checked on this host, ready to lock and execute.
    public struct Prepared: Sendable {
        /// The scenario as it runs: its containers found (the session's own is as written).
        public let scenario: Scenario
        public let plan: Plan
        public let preflight: PreflightReport
        public let facts: HostFacts
        /// Fault name → what it acts on (interfaces, processes, directories), for the locks and leftovers.
        public let claims: [String: Set<String>]
        /// Why it cannot run; empty when it can.
        public let refusals: [Refusal]
        /// The pod targets no running pod of this host matches (each also a refusal): an agent of a fleet has
        /// nothing to do then, which is not a failure.
        public var absentPods: Set<String> = []
    }

    public let scenario: Scenario
    public let runID: String
    public let settings: Settings
    public let journal: Journal
    public let context: DriverContext
    public let log: EventLog

    public init(scenario: Scenario, runID: String, settings: Settings, journal: Journal, context: DriverContext, log: EventLog) {
        self.scenario = scenario
        self.runID = runID
        self.settings = settings
        self.journal = journal
        self.context = context
        self.log = log
    }

    /// The run's own folder: its guard's log, and the agent's status, events and reports.
    public var directory: String { settings.stateDirectory + "/runs/" + runID }

    // MARK: Prepare

    /// Reverts what dead runs left (unless not `recovering`: a plan only), reads the host's facts, plans, checks the
    /// preflight and what is left in the way. Throws only when the journal cannot be read (then nothing can say what
    /// earlier runs left: nothing is applied).
    public func prepare(recovering: Bool = true) async throws(FaultlineError) -> Prepared {
        let left = recovering ? try await Leftovers.recover(journal: journal, context: context, log: log).left : []
        // Containers are found now (a restart since the scenario was written changed their PIDs).
        var scenario = self.scenario
        var containerProblems: [String: String] = [:]
        var absentPods: Set<String> = []
        if scenario.namesContainers {
            let resolution = await ContainerResolver(socket: settings.runtimeSocket).resolve(scenario)
            (scenario, containerProblems, absentPods) = (resolution.scenario, resolution.problems, resolution.absentPods)
        }
        let pins = HostFactsReader.PinSettings(directory: settings.stateDirectory + "/pins", runID: runID)
        var facts = if let read = settings.facts { await read(scenario, pins) } else {
            await HostFactsReader().read(for: scenario, agentPort: settings.agentPort, pins: pins)
        }
        facts.containerProblems = containerProblems
        if let executable = settings.executable { facts.executable = executable }
        let plan = Planner(facts: facts).plan(scenario, runID: runID)
        // The preflight checks what the plan does (the engine the planner chose, not either one).
        let preflight = if let check = settings.preflight { await check(scenario) } else { await Preflight().check(scenario, plan: plan) }
        let claims = ResourceClaims.of(scenario, plan: plan, facts: facts)

        var refusals: [Refusal] = []
        // Every target namespace of a network fault is held by a pin for the run; one that cannot be is refused.
        for fault in scenario.spec.faults where fault.type.isNetwork {
            guard let target = fault.target ?? scenario.spec.target, let namespace = facts.namespace(target), namespace.exists,
                  namespace.pin == nil else { continue }
            let refusal = Refusal.cannotHold(target: "\(target)", why: namespace.unreadable ?? "its namespace could not be identified")
            if !refusals.contains(refusal) { refusals.append(refusal) }
        }
        // What an earlier run left in place blocks this run only where both act on the same thing.
        let conflicts = Leftovers.conflicts(left, with: claims)
        for leftover in left where !leftover.isPin && !conflicts.contains(where: { $0.run == leftover.run.id && $0.leftFault == leftover.name }) {
            log.log(.note(.warning, .leftover, "run \(leftover.run.id) left '\(leftover.name)' in place, which this run does not touch: going on", fault: leftover.name))
        }
        refusals += conflicts.map(Refusal.leftover)
        refusals += plan.problems.map { Refusal.planProblem("\($0)") }
        refusals += preflight.checks.filter { $0.status == .missing }.map { Refusal.preflight($0.problem) }
        return Prepared(scenario: scenario, plan: plan, preflight: preflight, facts: facts, claims: claims, refusals: refusals, absentPods: absentPods)
    }

    /// Takes the state directory's locks on what the run acts on (shared by `faultline run` and the agent, so two runs
    /// on one interface, process or directory exclude each other); they hold as long as the value lives.
    public func lock(_ prepared: Prepared) throws(Locked) -> ClaimLocks {
        let all = prepared.claims.values.reduce(into: Set<String>()) { $0.formUnion($1) }
        do {
            return try ClaimLocks.take(all, runID: runID, directory: settings.stateDirectory + "/locks")
        } catch let held as ClaimLocks.Held {
            let fault = prepared.claims.filter { $0.value.contains(held.claim) }.keys.sorted().first ?? "a fault"
            throw Locked(fault: fault, claim: held.claim, holder: held.holder)
        } catch {
            throw Locked(fault: "", claim: "", holder: "", failure: "\(settings.stateDirectory)/locks: \(error)")
        }
    }

    // MARK: Execute

    /// Runs the method with its guard and couriers, until its end or `stop`; everything injected is reverted on
    /// every way out. `monitor` and `live` watch it as it goes.
    public func execute(_ prepared: Prepared, stop: StopSignal, monitor: RunMonitor? = nil, live: LiveView? = nil) async -> RunReport {
        let executable = settings.executable ?? prepared.facts.executable
        var runner = ExperimentRunner.Settings(runID: runID, guardCommand: settings.guarded ? [executable, "guard", "--run", runID] + settings.guardArguments : nil)
        runner.guardLog = directory + "/guard.log"
        runner.grace = settings.grace
        runner.tracer = settings.tracer
        runner.drivers = settings.drivers
        let runnerSettings = runner
        let name = scenario.metadata.name.rawValue
        let couriers = [WebhookNotifier.courier(hooks: WebhookNotifier.hooks(scenario, adding: settings.notify), run: runID, scenario: name,
                                                runbook: scenario.metadata.runbook, log: log),
                        GrafanaAnnotator.courier(settings.grafana, run: runID, scenario: name, log: log)].compactMap { $0 }
        let (scenario, journal, context) = (prepared.scenario, self.journal, self.context)
        let probes = settings.probes.map { $0(scenario, executable) } ?? ProbeExecutor(target: scenario.spec.target, executable: executable)
        return await EventCourier.around(couriers, log: log) { log in
            await ExperimentRunner(scenario: scenario, plan: prepared.plan, settings: runnerSettings, journal: journal, context: context,
                                   probes: probes, log: log, stop: stop, monitor: monitor, live: live).run()
        }
    }

    /// Removes the finished runs of a state directory beyond `retention` (`faultline run` and `recover` after their
    /// work): their journal rows and their folders (`runs/ID`, the guard's log), except a folder an agent keeps
    /// (it has a status.json: the agent prunes its own). A run whose revert failed is kept until acknowledged.
    /// The ids removed.
    @discardableResult
    public static func prune(_ journal: Journal, retention: Retention, now: Date = Date()) throws(FaultlineError) -> [String] {
        let victims = try journal.prune(retention, now: now)
        for id in victims where RunID.isValid(id) {
            let folder = journal.directory + "/runs/" + id
            if !FileManager.default.fileExists(atPath: folder + "/status.json") { try? FileManager.default.removeItem(atPath: folder) }
        }
        if !victims.isEmpty { try journal.compact() }
        return victims
    }

    /// report.json, report.md and report.html in `directory` (made if needed), each written atomically.
    public static func writeReports(_ report: RunReport, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for format in RunReport.Format.files {
            try report.rendered(format).write(to: URL(fileURLWithPath: directory + "/" + format.fileName), options: .atomic)
        }
    }
}

/// What dead runs left: reverted when it can be, and what stays (a failed revert) in the way of later runs that act
/// on the same thing.
public enum Leftovers {
    /// What a revert left in place: the run and the fault's journal entry, and why.
    public struct Leftover: Sendable {
        public var run: RunEntry
        public var name: String
        public var fault: FaultEntry?
        public var error: FaultlineError
        /// A pin mount left behind: said, but no fault, so it blocks no run.
        public var isPin = false
    }

    /// Reverts orphaned runs, saying what it did; the count reverted, and what is still in place.
    public static func recover(journal: Journal, context: DriverContext, log: EventLog) async throws(FaultlineError) -> (recovered: Int, left: [Leftover]) {
        let done = try await Recovery(journal: journal, context: context).recoverAll()
        var left: [Leftover] = []
        for (run, outcomes) in done {
            for outcome in outcomes {
                if let error = outcome.error {
                    left.append(Leftover(run: run, name: outcome.name, fault: outcome.fault, error: error, isPin: outcome.isPin))
                    log.log(.note(.error, .revertFailed, "left by run \(run.id) (\(run.scenario)) and still there: \(error)", fault: outcome.name))
                } else {
                    log.log(.note(.warning, .recovered, "reverted what run \(run.id) (\(run.scenario)) left", fault: outcome.name))
                }
            }
        }
        return (done.reduce(0) { $0 + $1.outcomes.count }, left)
    }

    /// Each fault of a run that acts on something a fault left in place by an earlier run holds.
    public static func conflicts(_ left: [Leftover], with claims: [String: Set<String>]) -> [LeftoverConflict] {
        var result: [LeftoverConflict] = []
        for leftover in left where !leftover.isPin {
            // A fault whose record cannot be read could be anywhere: it blocks every run.
            let held = leftover.fault.map { ResourceClaims.of($0.record) { try? NamespacePin.identity(of: $0).get() } }
            for (fault, wanted) in claims.sorted(by: { $0.key < $1.key }) {
                let claim: String? = if let held { wanted.intersection(held).sorted().first } else { "what an unreadable journal entry may hold" }
                guard let claim else { continue }
                result.append(LeftoverConflict(fault: fault, claim: claim, run: leftover.run.id, leftFault: leftover.name, error: "\(leftover.error)"))
            }
        }
        return result
    }
}

/// A fault of this run that acts on what an earlier run left in place.
public struct LeftoverConflict: Sendable, Hashable, CustomStringConvertible {
    public var fault: String
    public var claim: String
    /// The run that left it, and its fault.
    public var run: String
    public var leftFault: String
    /// Why its revert failed.
    public var error: String

    public var description: String {
        "'\(fault)' acts on \(claim), where run \(run) left '\(leftFault)' in place (its revert failed: \(error)); clean it up by hand, then: faultline recover --forget \(run) \(leftFault)"
    }
}
