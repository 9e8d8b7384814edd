import FaultlineCore
import FaultlineJournal
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// The `faultline` executable, run as users run it: output, errors and exit codes.
@Suite struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var executable: String { TestPaths.faultline }

    func faultline(_ arguments: [String], asUser user: String? = nil) async throws -> CommandResult {
        let prefix = user.map { ["setpriv", "--reuid=\($0)", "--regid=\($0)", "--clear-groups", "--"] } ?? []
        return try await SubprocessRunner().run(prefix + [Self.executable] + arguments, timeout: .seconds(60), outputLimit: 4 << 20)
    }

    func temporaryFile(_ text: String, name: String = "scenario.yaml") throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
        return url.path
    }

    func remove(_ file: String) {
        try? FileManager.default.removeItem(at: URL(fileURLWithPath: file).deletingLastPathComponent())
    }

    static let valid = """
        apiVersion: faultline/v1
        kind: Scenario
        metadata: {name: cli-test}
        spec:
          maxDuration: 2m
          faults:
            - name: slow
              type: bandwidth
              interface: lo
              rate: 1mbit
              duration: 1m
            - name: block
              type: drop
              start: 1m
              to: {hosts: [10.213.9.9], ports: [5432], protocol: tcp}
        """

    @Test func validatePrintsOkForEachExampleAndExitsZero() async throws {
        let examples = try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("scenarios").path)
            .filter { $0.hasSuffix(".yaml") }.sorted().map { Self.root.appendingPathComponent("scenarios/\($0)").path }
        let result = try await faultline(["validate"] + examples)
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput.split(separator: "\n").map(String.init) == examples.map { "ok \($0)" })
    }

    @Test("run on a terminal, declined at the prompt: nothing applied, nothing journalled, exit 130 (not 0)",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs script(1) (util-linux) for a terminal"))
    func declinedAtThePrompt() async throws {
        let file = try temporaryFile("""
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: declined}
            spec:
              maxDuration: 10s
              faults:
                - {name: burn, type: cpu-stress, duration: 5s, workers: 1, load: 10%}
            """)
        let state = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("state").path
        defer { remove(file) }
        // script(1) gives the run a terminal; the answer "n" comes on it.
        let inner = ShellQuote.join([Self.executable, "run", file, "--state-dir", state])
        let result = try await SubprocessRunner().run(["/bin/sh", "-c", "printf 'n\\n' | script -qec \(ShellQuote.quote(inner)) /dev/null"],
                                                      timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(result.exitCode == 130, "\(result.standardOutput) \(result.standardError)")
        #expect(result.standardOutput.contains("Run it now? [y/N]") && result.standardOutput.contains("nothing was applied"), "\(result.standardOutput)")
        #expect(!result.standardOutput.contains("injected"), "\(result.standardOutput)")
        #expect(try Journal(directory: state).runs().isEmpty, "a declined run is not even journalled")
        #expect(result.standardOutput.contains("About to run declined: 1 fault(s) for at most 10s — burn: cpu-stress on this host, +0s to +5s."),
                "the summary stands right above the prompt: \(result.standardOutput)")

        // Output piped (`2>&1 | tee log`) while a person sits at the terminal: still asked; an empty answer is no.
        let piped = ShellQuote.join([Self.executable, "run", file, "--state-dir", state]) + " 2>&1 | cat > " + ShellQuote.quote(state + ".log")
        let asked = try await SubprocessRunner().run(["/bin/sh", "-c", "printf '\\n' | script -qec \(ShellQuote.quote(piped)) /dev/null"],
                                                     timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(asked.standardOutput.contains("Run it now? [y/N]") && asked.standardOutput.contains("nothing was applied"), "\(asked.standardOutput)")
        #expect(try Journal(directory: state).runs().isEmpty, "nothing ran: \((try? String(contentsOfFile: state + ".log", encoding: .utf8)) ?? "")")
        try? FileManager.default.removeItem(atPath: state + ".log")
    }

    @Test("a mistyped command says which one was meant (exit 2); a journal that cannot be opened says what would open it, and recover then exits 3, not 4")
    func mistakesAreSaidInWords() async throws {
        let typo = try await SubprocessRunner().run([Self.executable, "--state-dir", "/tmp/none", "rnu", "x.yaml"], timeout: .seconds(30), outputLimit: 1 << 20)
        #expect(typo.exitCode == 2 && typo.standardError.hasPrefix("faultline: 'rnu' is not a faultline command (did you mean 'run'?)"), "\(typo.standardError)")
        let far = try await SubprocessRunner().run([Self.executable, "zzzzzz"], timeout: .seconds(30), outputLimit: 1 << 20)
        #expect(far.exitCode == 2 && far.standardError.hasPrefix("faultline: 'zzzzzz' is not a faultline command\n"), "\(far.standardError)")
        guard geteuid() == 0 else {
            print("the permission half skipped: needs root to run as nobody")
            return
        }
        let denied = try await SubprocessRunner().run(["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "--",
                                                       Self.executable, "recover", "--state-dir", "/root/faultline-no-access"],
                                                      timeout: .seconds(30), outputLimit: 1 << 20)
        #expect(denied.exitCode == 3, "\(denied.standardError)")
        #expect(denied.standardError.contains("permission denied") && denied.standardError.contains("or give --state-dir a directory you can write")
                && !denied.standardError.contains("NSCocoaErrorDomain"), "\(denied.standardError)")
        #expect(!FileManager.default.fileExists(atPath: "/root/faultline-no-access"))
    }

    @Test func validateReportsEveryErrorWithPositionAndExitsTwo() async throws {
        let file = try temporaryFile("""
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: Bad_Name}
            spec:
              maxDuration: 1m
              faults:
                - {name: a, type: latncy, interface: eth0}
                - {name: b, type: latency, interface: eth0, dealy: 5ms}
            """)
        defer { remove(file) }
        let result = try await faultline(["validate", file])
        #expect(result.exitCode == 2)
        #expect(result.standardOutput.isEmpty)
        let lines = result.standardError.split(separator: "\n").map(String.init)
        #expect(lines == [
            "\(file):3:18: metadata.name: invalid name 'Bad_Name': use lowercase letters, digits and '-', starting and ending with a letter or digit",
            "\(file):7:23: spec.faults[0].type: unknown fault type 'latncy' (did you mean 'latency'?)",
            "\(file):8:49: spec.faults[1]: unknown key 'dealy' (did you mean 'delay'?)",
            "\(file): 3 errors",
        ])
    }

    @Test("validate -o json: one object with ok, every file and every error with its position, on stdout only; exit codes as in text")
    func validateAsJSON() async throws {
        let good = try temporaryFile(Self.valid)
        let bad = try temporaryFile("""
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: Bad_Name}
            spec:
              maxDuration: 1m
              faults:
                - {name: b, type: latency, interface: eth0, dealy: 5ms}
            """)
        defer {
            remove(good)
            remove(bad)
        }
        struct Summary: Decodable {
            struct File: Decodable, Equatable {
                var file: String
                var ok: Bool
            }
            var ok: Bool
            var files: [File]
            var errors: [Diagnostic]
        }
        let valid = try await faultline(["validate", "-o", "json", good])
        #expect(valid.exitCode == 0 && valid.standardError.isEmpty, "\(valid.standardError)")
        let passed = try JSONDecoder().decode(Summary.self, from: Data(valid.standardOutput.utf8))
        #expect(passed.ok && passed.files == [.init(file: good, ok: true)] && passed.errors.isEmpty)

        let mixed = try await faultline(["validate", good, bad, "--output", "json"])
        #expect(mixed.exitCode == 2)
        #expect(mixed.standardError.isEmpty, "\(mixed.standardError)")
        let failed = try JSONDecoder().decode(Summary.self, from: Data(mixed.standardOutput.utf8))
        #expect(!failed.ok)
        #expect(failed.files == [.init(file: good, ok: true), .init(file: bad, ok: false)])
        #expect(failed.errors == [
            Diagnostic(file: bad, line: 3, column: 18, path: "metadata.name",
                       message: "invalid name 'Bad_Name': use lowercase letters, digits and '-', starting and ending with a letter or digit"),
            Diagnostic(file: bad, line: 7, column: 49, path: "spec.faults[0]", message: "unknown key 'dealy' (did you mean 'delay'?)"),
        ])
    }

    @Test func validateOfAMissingFileSaysSoAndExitsTwo() async throws {
        let result = try await faultline(["validate", "/nonexistent/x.yaml"])
        #expect(result.exitCode == 2)
        #expect(result.standardError.hasPrefix("/nonexistent/x.yaml:1:1: cannot read file"))
    }

    @Test func usageErrorsExitTwo() async throws {
        #expect(try await faultline(["validate"]).exitCode == 2)
        #expect(try await faultline(["plan", "--format", "xml", "x.yaml"]).exitCode == 2)
        #expect(try await faultline(["plan", "-o", "xml", "x.yaml"]).exitCode == 2)
        #expect(try await faultline(["list", "-o", "text", "--json"]).exitCode == 2)
        #expect(try await faultline(["submit", "x.yaml", "--cron", "61 * * * *", "--agent", "http://127.0.0.1:1"]).exitCode == 2)
        #expect(try await faultline(["frobnicate"]).exitCode == 2)
    }

    @Test func theDeploymentExamplesPlaceholderTokenIsRefused() async throws {
        let file = try temporaryFile("REPLACE-ME-WITH-A-RANDOM-TOKEN\n", name: "token")
        defer { remove(file) }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: file)
        let state = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("state").path
        let result = try await faultline(["agent", "--listen", "127.0.0.1:0", "--token-file", file, "--state-dir", state])
        #expect(result.exitCode == 2)
        #expect(result.standardError.contains("placeholder"), "\(result.standardError)")
    }

    @Test("traces asked for but impossible to set up stop the run before anything is applied (exit 2)")
    func anUnservableTraceConfigurationStopsTheRun() async throws {
        let file = try temporaryFile("""
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: traced-nowhere}
            spec:
              maxDuration: 5s
              faults:
                - {name: burn, type: cpu-stress, duration: 1s, workers: 1, load: 1%}
            """)
        defer { remove(file) }
        let state = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent("state").path
        // swift-otel has no Zipkin exporter of its own (a collector translates).
        let result = try await SubprocessRunner().run(["/usr/bin/env", "OTEL_TRACES_EXPORTER=zipkin", Self.executable, "run", file, "--yes",
                                                       "--state-dir", state, "--otlp-endpoint", "http://127.0.0.1:9"], timeout: .seconds(60), outputLimit: 1 << 20)
        #expect(result.exitCode == 2, "\(result.standardError)")
        #expect(result.standardError.contains("cannot set up traces") && result.standardError.contains("nothing was applied"), "\(result.standardError)")
        #expect(!result.standardError.contains("injected"), "\(result.standardError)")
        let notURL = try await faultline(["run", file, "--yes", "--state-dir", state, "--otlp-endpoint", "collector:4318"])
        #expect(notURL.exitCode == 2 && notURL.standardError.contains("--otlp-endpoint 'collector:4318' is not an http:// or https:// URL"), "\(notURL.standardError)")
    }

    @Test func helpShowsAnExample() async throws {
        for command in ["validate", "plan"] {
            let result = try await faultline([command, "--help"])
            #expect(result.exitCode == 0)
            #expect(result.standardOutput.contains("Example"))
        }
    }

    @Test func planShowsTimelineCommandsAndExemptions() async throws {
        let file = try temporaryFile(Self.valid)
        defer { remove(file) }
        let result = try await faultline(["plan", file, "--run-id", "abc123", "--agent-port", "7465"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        let text = result.standardOutput
        #expect(text.contains("Plan for cli-test (run abc123)"))
        #expect(text.contains("+1m      revert   slow: bandwidth reverted"))
        #expect(text.contains("$ tc qdisc replace dev lo root handle fa17: htb default 2"))
        #expect(text.contains("$ tc qdisc add dev lo parent fa17:2 handle fa18: tbf rate 1mbit burst 1600 limit 7850"))
        #expect(text.contains("- the agent's API: tcp port 7465, both directions"))
        #expect(text.contains("$ iptables-restore -w 5 --noflush <<'EOF'") && text.contains("      -A FAULTLINE-abc123-1 -p tcp -d 10.213.9.9/32 --dport 5432 -m comment --comment faultline:abc123:block -j DROP"), "\(text)")
        #expect(text.contains("$ tc qdisc del dev lo root handle fa17:"))
    }

    @Test func planAsJSONDecodes() async throws {
        let file = try temporaryFile(Self.valid)
        defer { remove(file) }
        let result = try await faultline(["plan", file, "-o", "json"])
        #expect(result.exitCode == 0, "\(result.standardError)")
        let plan = try JSONDecoder().decode(Plan.self, from: Data(result.standardOutput.utf8))
        #expect(plan.faults.map(\.name) == ["slow", "block"])
        #expect(plan.runID == RunID.derived(from: Self.valid))
        // The older spelling prints the same.
        let older = try await faultline(["plan", file, "--format", "json"])
        #expect(older.exitCode == 0 && older.standardOutput == result.standardOutput)
    }

    @Test("a plan that lists problems that would stop the run is still printed, and exits 3 as a failed preflight does")
    func planWithProblemsExitsThree() async throws {
        let file = try temporaryFile(Self.valid.replacingOccurrences(of: "interface: lo", with: "interface: nosuchif9"))
        defer { remove(file) }
        for format in ["text", "json"] {
            let result = try await faultline(["plan", file, "--format", format])
            #expect(result.exitCode == 3, "\(format): \(result.standardError)")
            #expect(result.standardOutput.contains("interface 'nosuchif9' not found"), "\(format): \(result.standardOutput)")
        }
        let json = try await faultline(["plan", file, "--format", "json"])
        let plan = try JSONDecoder().decode(Plan.self, from: Data(json.standardOutput.utf8))
        #expect(plan.faults.map(\.name) == ["slow", "block"])
        #expect(!plan.problems.isEmpty)
    }

    @Test func planOfAnInvalidFileExitsTwo() async throws {
        let file = try temporaryFile("apiVersion: faultline/v1\nkind: Scenario\n")
        defer { remove(file) }
        let result = try await faultline(["plan", file])
        #expect(result.exitCode == 2)
        #expect(result.standardError.contains("missing required key 'metadata'"))
    }

    @Test(.enabled(if: geteuid() == 0, "needs root to drop to an unprivileged user"))
    func planWorksWithoutRootAndSaysWhatItCouldNotRead() async throws {
        let file = try temporaryFile(Self.valid.replacingOccurrences(of: "maxDuration: 2m", with: "maxDuration: 2m\n  target: {netns: pid:1}"))
        defer { remove(file) }
        let result = try await faultline(["plan", file], asUser: "65534")
        #expect(result.exitCode == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("interfaces and qdiscs of pid 1 unknown"))
        #expect(result.standardOutput.contains("$ nsenter --net=/proc/1/ns/net -- tc qdisc replace dev lo root handle fa17: htb default 2"))
    }
}
