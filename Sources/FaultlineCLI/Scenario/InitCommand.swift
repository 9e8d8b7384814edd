import ArgumentParser
import FaultlineCore
import Foundation

/// `faultline init [FILE]`: a commented scenario to start from, like `chaos init` or `k6 new`.
struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write a commented scenario to start from: latency to a dependency, a dropped dependency, a killed process or a full disk.",
        discussion: """
            Every template is a valid scenario with a steady state (an HTTP probe, an SLO, abort conditions and a \
            recovery window) and one fault; the addresses are placeholders (192.0.2.x, documentation addresses) \
            to replace. Nothing is applied. An existing file is kept unless --force is given. Exit code 2 when \
            the file exists.

            Examples:
              faultline init checkout-latency.yaml
              faultline init --template drop payments-partition.yaml
              faultline init --template fill -    # to standard output
            """
    )

    enum Template: String, ExpressibleByArgument, CaseIterable {
        case latency, drop, kill, fill
    }

    @Argument(help: "Where to write it ('-' for standard output).", completion: .file(extensions: ["yaml", "yml"]))
    var file: String = "scenario.yaml"

    @Option(help: "latency (to a dependency), drop (a dependency unreachable), kill (a process, repeatedly) or fill (a disk).")
    var template: Template = .latency

    @Flag(help: "Overwrite the file if it exists.")
    var force = false

    func run() throws {
        let name = file == "-" ? "my-game-day" : Self.scenarioName(from: file)
        let text = Self.text(template, name: name)
        if file == "-" {
            print(text, terminator: "")
            return
        }
        if FileManager.default.fileExists(atPath: file), !force {
            StandardError.write("faultline init: \(file) exists: give another file name, or --force to overwrite it\n")
            throw ExitStatus.invalid
        }
        do {
            try text.write(toFile: file, atomically: true, encoding: .utf8)
        } catch {
            StandardError.write("faultline init: cannot write \(file): \((error as NSError).localizedDescription)\n")
            throw ExitStatus.invalid
        }
        print("wrote \(file) (template \(template.rawValue)): replace the placeholder target and addresses, then\n  faultline plan \(file)\n  faultline run \(file)")
    }

    /// A valid metadata.name from the file's name: `Checkout_Latency.yaml` → `checkout-latency`.
    static func scenarioName(from file: String) -> String {
        let base = (file as NSString).lastPathComponent.split(separator: ".").first.map(String.init) ?? "scenario"
        var name = String(base.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" })
        while name.contains("--") { name = name.replacingOccurrences(of: "--", with: "-") }
        name = name.trimmingCharacters(in: CharacterSet(charactersIn: "-"))
        if name.isEmpty || !(name.first?.isLetter ?? false) { name = "scenario-" + name }
        return String(name.prefix(63)).trimmingCharacters(in: CharacterSet(charactersIn: "-"))
    }

    static func text(_ template: Template, name: String) -> String {
        let header = """
            # A Faultline scenario (reference: docs/scenario-format.md; `faultline explain KEY` for any key).
            # Read the plan first: `faultline plan FILE` shows every command it would run and how it is undone.
            apiVersion: faultline/v1
            kind: Scenario
            metadata:
              name: \(name)
              description: \(description(template))
              owner: team-name                    # who to ask about this experiment
              # runbook: https://wiki.example.com/runbooks/checkout   # printed when the run aborts
            spec:
              # The hard limit: whatever happens, every fault is reverted by then.
              maxDuration: 5m
              # Where the faults act: this host's namespaces by default; or {netns: NAME}, {pid: N},
              # {container: NAME} or {pod: {namespace: NS, name: NAME}}.
              target: {container: checkout}
              steadyState:
                probes:
                  # What "healthy" means, checked before, during and after the faults.
                  - name: checkout-health
                    interval: 1s
                    http: {url: "http://127.0.0.1:8080/health", timeout: 1s, expect: {status: [200]}}
                # At most 1% of probe results may be bad (failed, or slower than 500ms).
                slo: {objective: 99%, latency: 500ms}
                # Stop and revert everything at once when it goes badly.
                abortWhen: {consecutiveFailures: 5, burnRate: {factor: 10, window: 1m}}
                # After the last revert the probes must be back within this long.
                recoveryWindow: 30s
              faults:

            """
        return header + fault(template)
    }

    static func description(_ template: Template) -> String {
        switch template {
        case .latency: "Checkout holds its SLO while its database answers 200 ms slower."
        case .drop: "Checkout fails fast, and recovers, while the payment provider is unreachable."
        case .kill: "Checkout's workers are killed every 30s; the supervisor restarts them and the SLO holds."
        case .fill: "Checkout keeps serving while the disk under its logs is 95% full."
        }
    }

    static func fault(_ template: Template) -> String {
        switch template {
        case .latency:
            """
                # 200 ms more on what the service sends to its database (egress of eth0, in the target's namespace).
                - name: db-latency
                  type: latency
                  start: 30s                      # a baseline first: the report compares against it
                  duration: 2m
                  interface: eth0
                  delay: 200ms
                  jitter: 20ms
                  to: {hosts: [192.0.2.10], ports: [5432], protocol: tcp}   # the remote end: the database
                  # from: {ports: [8080]}         # the local end instead: the service's own answers
                  # direction: ingress            # what eth0 receives instead of what it sends

            """
        case .drop:
            """
                # Packets to the payment provider dropped: its calls time out (reject: true makes them fail fast).
                - name: payments-unreachable
                  type: drop
                  start: 30s
                  duration: 2m
                  direction: egress
                  to: {hosts: [192.0.2.20], ports: [443], protocol: tcp}
                  # probability: 30%              # only this share of new connections

            """
        case .kill:
            """
                # SIGKILL to the worker processes every 30 s (never more than maxMatches at once).
                - name: kill-workers
                  type: kill-process
                  start: 30s
                  duration: 2m
                  match: {cmdline: "checkout-worker", maxMatches: 4}
                  signal: SIGKILL
                  mode: one                       # one, all or random of the matching processes
                  every: 30s

            """
        case .fill:
            """
                # The filesystem of /var/log filled to 95% with one preallocated file, removed on revert.
                - name: logs-disk-full
                  type: disk-fill
                  start: 30s
                  duration: 2m
                  path: /var/log
                  fillTo: 95%
                  reserve: 64MiB                  # always left free, whatever fillTo asks

            """
        }
    }
}
