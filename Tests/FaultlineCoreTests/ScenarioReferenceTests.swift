@testable import FaultlineCore
import Foundation
import Testing

/// `faultline explain` and `faultline schema` read the key tables of docs/scenario-format.md for the keys the loader
/// allows: the embedded copy is the docs' own, every key is documented, and nothing documented is not a key.
@Suite struct ScenarioReferenceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test("the embedded key tables are docs/scenario-format.md's (run scripts/generate-scenario-reference after editing them)")
    func theEmbeddedTablesAreTheDocs() throws {
        let docs = try String(contentsOf: Self.root.appendingPathComponent("docs/scenario-format.md"), encoding: .utf8)
        #expect(ScenarioReference.extract(fromMarkdown: docs) == ScenarioReference.text,
                "docs/scenario-format.md changed: run scripts/generate-scenario-reference")
    }

    @Test("every key the loader allows is documented, and every documented key is one the loader allows")
    func keysAndDocsAgree() {
        let undocumented = ScenarioSchema.allKeyPaths.filter { ScenarioReference.entries(for: $0).isEmpty }
        #expect(undocumented.isEmpty, "no documentation row for: \(undocumented)")
        let unknown = ScenarioReference.entries.map(\.path).filter { ScenarioReference.canonical($0) == nil }
        #expect(unknown.isEmpty, "documented but not allowed by the loader: \(unknown)")
    }

    @Test("explain: a key in every section that documents it, the keys under it; a fault type's keys; a mistyped key gets the nearest")
    func explain() throws {
        let from = try #require(ScenarioReference.explain("spec.faults.from"))
        #expect(from.hasPrefix("spec.faults[].from\n"))
        #expect(from.contains("in each of 14.2 latency; 14.3 packet-loss; 14.4 corrupt and duplicate; 14.5 reorder; 14.6 bandwidth:"), "\(from)")
        #expect(from.contains("in 14.7 drop:") && from.contains("Keys under it:\n  hosts"), "\(from)")
        let latency = try #require(ScenarioReference.explain("latency"))
        #expect(latency.contains("\n  direction") && latency.contains("\n  engine") && !latency.contains("\n  reject"), "\(latency)")
        let top = try #require(ScenarioReference.explain(""))
        #expect(top.contains("\n  apiVersion") && top.contains("\n  spec"), "\(top)")
        #expect(ScenarioReference.explain("spec.faults[].dirction") == nil)
        #expect(ScenarioReference.unknown("spec.faults[].dirction")?.contains("did you mean 'spec.faults[].direction'?") == true)
    }

    @Test("the JSON Schema: every key of the loader, each fault type's own keys, the enumerations' choices; docs/scenario.schema.json is it")
    func theSchema() throws {
        let shipped = try String(contentsOf: Self.root.appendingPathComponent("docs/scenario.schema.json"), encoding: .utf8)
        #expect(shipped == ScenarioJSONSchema.document(), "docs/scenario.schema.json is stale: faultline schema > docs/scenario.schema.json")
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(shipped.utf8)) as? [String: Any])
        let spec = try #require((schema["properties"] as? [String: Any])?["spec"] as? [String: Any])
        let faults = try #require((spec["properties"] as? [String: Any])?["faults"] as? [String: Any])
        let fault = try #require(faults["items"] as? [String: Any])
        let properties = try #require(fault["properties"] as? [String: Any])
        #expect((properties["type"] as? [String: Any])?["enum"] as? [String] == FaultType.allCases.map(\.rawValue))
        #expect(((properties["from"] as? [String: Any])?["description"] as? String)?.contains("local end") == true)
        #expect((fault["allOf"] as? [Any])?.count == FaultType.allCases.count)
    }
}
