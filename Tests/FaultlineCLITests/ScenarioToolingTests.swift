import FaultlineCore
import FaultlineSystem
import FaultlineTestSupport
import Foundation
import Testing

/// The commands that help write a scenario, run as users run them: init (templates), explain (the docs of a key),
/// schema (JSON Schema for editors, checked with a real validator against every example and template).
@Suite struct ScenarioToolingTests {
    func faultline(_ arguments: [String], in directory: String? = nil) async throws -> CommandResult {
        let argv = directory.map { ["env", "-C", $0, TestPaths.faultline] } ?? [TestPaths.faultline]
        return try await SubprocessRunner().run(argv + arguments, timeout: .seconds(60), outputLimit: 4 << 20)
    }

    func withDirectory(_ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-cli-init-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await body(directory)
    }

    static let templates = ["latency", "drop", "kill", "fill"]

    @Test("init writes a commented, valid scenario per template, named after the file; it keeps an existing file unless --force")
    func initWritesAValidScenario() async throws {
        try await withDirectory { directory in
            for template in Self.templates {
                let file = "Checkout_\(template).yaml"
                let written = try await faultline(["init", "--template", template, file], in: directory)
                #expect(written.exitCode == 0 && written.standardOutput.contains("faultline plan \(file)"), "\(written.standardError)")
                let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
                #expect(text.contains("  name: checkout-\(template)\n") && text.contains("# "), "\(text)")
                let scenario = try ScenarioLoader.load(yaml: text, file: file)
                #expect(scenario.spec.faults.count == 1 && scenario.spec.steadyState?.recoveryWindow != nil)
                let valid = try await faultline(["validate", file], in: directory)
                #expect(valid.exitCode == 0, "\(valid.standardError)")
            }
            let again = try await faultline(["init", "Checkout_latency.yaml"], in: directory)
            #expect(again.exitCode == 2 && again.standardError.contains("Checkout_latency.yaml exists"), "\(again.standardError)")
            let forced = try await faultline(["init", "--force", "--template", "drop", "Checkout_latency.yaml"], in: directory)
            #expect(forced.exitCode == 0)
            #expect(try String(contentsOfFile: directory + "/Checkout_latency.yaml", encoding: .utf8).contains("type: drop"))
            let out = try await faultline(["init", "--template", "fill", "-"])
            #expect(out.exitCode == 0 && out.standardOutput.contains("type: disk-fill"))
        }
    }

    @Test("explain prints a key's documentation; a key the format does not have exits 2 with the nearest one")
    func explain() async throws {
        let from = try await faultline(["explain", "spec.faults[].from"])
        #expect(from.exitCode == 0 && from.standardOutput.contains("in 14.7 drop:") && from.standardOutput.contains("Keys under it:"), "\(from.standardOutput)")
        let typo = try await faultline(["explain", "spec.steadyState.abortWen"])
        #expect(typo.exitCode == 2 && typo.standardError.contains("did you mean 'spec.steadyState.abortWhen'?"), "\(typo.standardError)")
        let type = try await faultline(["explain", "bandwidth"])
        #expect(type.exitCode == 0 && type.standardOutput.contains("\n  rate"), "\(type.standardOutput)")
    }

    static let hasValidator = TestPython.canImport("jsonschema, yaml")

    @Test(.enabled(if: hasValidator, "needs jsonschema and PyYAML in .build-tools/venv (scripts/test-python installs them)"))
    func theSchemaAcceptsEveryExampleAndRejectsWhatTheLoaderRejects() async throws {
        try await withDirectory { directory in
            let schema = try await faultline(["schema"])
            #expect(schema.exitCode == 0)
            try schema.standardOutput.write(toFile: directory + "/schema.json", atomically: true, encoding: .utf8)
            var good = try FileManager.default.contentsOfDirectory(atPath: TestPaths.root.appendingPathComponent("scenarios").path)
                .filter { $0.hasSuffix(".yaml") }.map { TestPaths.root.appendingPathComponent("scenarios/\($0)").path }
            for template in Self.templates {
                let file = directory + "/\(template).yaml"
                _ = try await faultline(["init", "--template", template, file])
                good.append(file)
            }
            #expect(good.count >= 15 + 4)
            // What the loader rejects and the schema can see: a key no fault has, one of another type, a type that is not one.
            let base = try String(contentsOfFile: directory + "/latency.yaml", encoding: .utf8)
            let bad = [
                "unknown-key": base.replacingOccurrences(of: "      delay: 200ms\n", with: "      delay: 200ms\n      severity: high\n"),
                "other-type-key": base.replacingOccurrences(of: "      delay: 200ms\n", with: "      delay: 200ms\n      reject: true\n"),
                "no-such-type": base.replacingOccurrences(of: "type: latency", with: "type: latncy"),
                "no-such-engine": base.replacingOccurrences(of: "      delay: 200ms\n", with: "      delay: 200ms\n      engine: tc\n"),
                "unknown-top-key": base + "status: {}\n",
            ]
            var badFiles: [String] = []
            for (name, text) in bad {
                #expect(text != base, "\(name) changed nothing")
                #expect(throws: ScenarioErrors.self, "the loader rejects \(name) too") { try ScenarioLoader.load(yaml: text, file: name) }
                try text.write(toFile: directory + "/\(name).yaml", atomically: true, encoding: .utf8)
                badFiles.append(directory + "/\(name).yaml")
            }
            let check = """
                import json, sys, yaml, jsonschema
                schema = json.load(open(sys.argv[1]))
                jsonschema.Draft7Validator.check_schema(schema)
                validator = jsonschema.Draft7Validator(schema)
                for path in sys.argv[2:]:
                    errors = [e.message for e in validator.iter_errors(yaml.safe_load(open(path)))]
                    print(json.dumps({"file": path, "errors": errors}))
                """
            let result = try await SubprocessRunner().run([TestPython.path, "-c", check, directory + "/schema.json"] + good + badFiles,
                                                          timeout: .seconds(60), outputLimit: 4 << 20)
            #expect(result.exitCode == 0, "\(result.standardError)")
            struct Outcome: Decodable { var file: String; var errors: [String] }
            let outcomes = try result.standardOutput.split(separator: "\n").map { try JSONDecoder().decode(Outcome.self, from: Data($0.utf8)) }
            #expect(outcomes.count == good.count + badFiles.count)
            for outcome in outcomes {
                if good.contains(outcome.file) {
                    #expect(outcome.errors.isEmpty, "\(outcome.file): \(outcome.errors)")
                } else {
                    #expect(!outcome.errors.isEmpty, "the schema let \(outcome.file) through")
                }
            }
        }
    }
}
