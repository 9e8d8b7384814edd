import ArgumentParser
import FaultlineCore
import FaultlineSystem

/// `faultline plan FILE`: the timeline and the exact argv of every inject and revert command; runs nothing.
struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Show the timeline and the exact commands that inject and revert each fault; runs nothing.",
        discussion: """
            Reads facts about this host (interfaces, root qdiscs, host names) but changes nothing, and \
            works without root; facts it cannot read are named in the plan. Each run picks a fresh run id; \
            the plan shows one derived from the file. Exits 3 when the plan lists problems that would stop \
            the run (an interface or target not found, a kernel feature missing), 2 for an invalid file.

            Example:
              faultline plan scenarios/checkout-db-latency.yaml -o json
            """
    )

    @Argument(help: "The scenario file.", completion: .file(extensions: ["yaml", "yml", "json"]))
    var file: String

    /// `-o json` (or the older `--format json`): the plan as JSON.
    @OptionGroup var output: OutputOrFormatOption

    @Option(help: "The run id to show in chain names and comments (default: derived from the file).")
    var runID: String?

    @Option(help: "Plan as the agent listening on this port would (its API port is exempt from network faults).")
    var agentPort: UInt16?

    @OptionGroup var runtime: RuntimeOptions

    /// --state-dir: where the run would pin its target namespaces (shown in the commands).
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if let runID, !RunID.isValid(runID) {
            throw ValidationError("invalid --run-id '\(runID)': use 1 to 16 lowercase letters and digits")
        }
    }

    func run() async throws {
        var scenario = try ScenarioFile.loadOrExit(file)
        let id = runID ?? RunID.derived(from: ScenarioFile.contents(file) ?? file)
        // Containers are found as a run would find them now (a run finds them again when it starts).
        var containerProblems: [String: String] = [:]
        if scenario.namesContainers {
            let resolution = await ContainerResolver(socket: runtime.runtimeSocket).resolve(scenario)
            (scenario, containerProblems) = (resolution.scenario, resolution.problems)
        }
        var facts = await HostFactsReader().read(for: scenario, agentPort: agentPort, pins: .init(directory: global.stateDirectory + "/pins", runID: id))
        facts.containerProblems = containerProblems
        let plan = Planner(facts: facts).plan(scenario, runID: id)
        switch output.format {
        case .text: print(PlanRenderer.text(plan), terminator: "")
        case .json: print(try PlanRenderer.json(plan), terminator: "")
        }
        // The plan is shown either way; problems that would stop the run exit 3, as a failed preflight does.
        if !plan.problems.isEmpty { throw ExitStatus.preflightFailed }
    }
}
