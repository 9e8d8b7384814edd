import Foundation

/// A JSON Schema (draft-07) of the scenario format for editors (yaml-language-server, VS Code's YAML extension):
/// made from the keys the loader allows (`ScenarioSchema`) and their documentation (`ScenarioReference`), with the
/// choices of the format's enumerations. It helps while typing (keys, descriptions, choices); the loader stays the
/// judge of values (`faultline validate`).
public enum ScenarioJSONSchema {
    /// `faultline schema`: the schema as JSON, keys sorted, so the shipped copy can be compared.
    public static func document() -> String {
        let data = (try? JSONSerialization.data(withJSONObject: schema(), options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// Keys whose values are one of a fixed list.
    static let choices: [String: [String]] = [
        "apiVersion": [Scenario.apiVersion],
        "kind": [Scenario.kind],
        "spec.faults[].type": FaultType.allCases.map(\.rawValue),
        "spec.faults[].engine": NetemEngine.allCases.map(\.rawValue),
        "spec.faults[].distribution": DelayDistribution.allCases.map(\.rawValue),
        "spec.faults[].direction": TrafficDirection.allCases.map(\.rawValue),
        "spec.faults[].mode": KillMode.allCases.map(\.rawValue),
        "spec.faults[].to.protocol": TrafficProtocol.allCases.map(\.rawValue),
        "spec.faults[].from.protocol": TrafficProtocol.allCases.map(\.rawValue),
        "spec.faults[].except.protocol": TrafficProtocol.allCases.map(\.rawValue),
        "spec.steadyState.probes[].tcp.expect": TCPCheck.Expectation.allCases.map(\.rawValue),
    ]

    /// Mappings (not lists or scalars): `type: object` for them; other nodes with keys may also be written as a
    /// scalar (a secret, a pod mode) and only get their keys checked when they are mappings.
    static let mappings: Set<String> = ["", "metadata", "spec", "spec.steadyState", "spec.faults[]", "spec.steadyState.probes[]", "spec.notify[]"]

    /// One node of the key tree: its keys in the format's order, and whether its value is a list of mappings.
    final class Node {
        var keys: [String] = []
        var children: [String: Node] = [:]
        var isList = false

        func child(_ name: String) -> Node {
            if let node = children[name] { return node }
            let node = Node()
            children[name] = node
            keys.append(name)
            return node
        }
    }

    static func tree() -> Node {
        let root = Node()
        for path in ScenarioSchema.allKeyPaths {
            var node = root
            for segment in path.split(separator: ".") {
                let list = segment.hasSuffix("[]")
                node = node.child(String(list ? segment.dropLast(2) : segment))
                if list { node.isList = true }
            }
        }
        return root
    }

    static func schema() -> [String: Any] {
        var document = object(tree(), path: "")
        document["$schema"] = "http://json-schema.org/draft-07/schema#"
        document["$id"] = "https://faultline.dev/schemas/scenario-v1.json"
        document["title"] = "Faultline scenario (\(Scenario.apiVersion))"
        document["description"] = "A chaos experiment: its steady state, its faults and when they act. Reference: docs/scenario-format.md; `faultline explain KEY` prints a key's documentation."
        document["required"] = ["apiVersion", "kind", "metadata", "spec"]
        return document
    }

    /// The schema of the node at `path` (its key path as the format writes it, lists marked with `[]`).
    static func object(_ node: Node, path: String) -> [String: Any] {
        var schema: [String: Any] = [:]
        if node.keys.isEmpty {
            if let values = choices[path] { schema["enum"] = values }
        } else {
            var properties: [String: Any] = [:]
            for key in node.keys {
                guard let child = node.children[key] else { continue }
                let childPath = (path.isEmpty ? "" : path + ".") + key + (child.isList ? "[]" : "")
                var property = object(child, path: childPath)
                if child.isList { property = ["type": "array", "items": property] }
                if let text = description(path.isEmpty ? key : path + "." + key) { property["description"] = text }
                properties[key] = property
            }
            schema["properties"] = properties
            schema["additionalProperties"] = false
            if mappings.contains(path) { schema["type"] = "object" }
        }
        if path == "spec.faults[]" {
            // Each type allows its own keys besides the common ones.
            schema["required"] = ["name", "type"]
            schema["allOf"] = FaultType.allCases.map { type -> [String: Any] in
                ["if": ["properties": ["type": ["const": type.rawValue]], "required": ["type"]],
                 "then": ["propertyNames": ["enum": ScenarioSchema.faultCommon + (ScenarioSchema.faultParameters[type] ?? [])]]]
            }
        }
        if path == "metadata" { schema["required"] = ["name"] }
        return schema
    }

    /// A key's documentation in one paragraph: its type, default and meaning (each section's, for a key several
    /// fault types share).
    static func description(_ path: String) -> String? {
        let rows = ScenarioReference.entries(for: path)
        guard let first = rows.first else { return nil }
        var text = ScenarioReference.plain(first.type)
        if !first.defaultValue.isEmpty { text += "; default: " + ScenarioReference.plain(first.defaultValue) }
        var meanings: [String] = []
        for row in rows where !row.meaning.isEmpty {
            let line = ScenarioReference.plain(row.meaning)
            if !meanings.contains(where: { $0.hasSuffix(line) }) {
                meanings.append(rows.count > 1 ? "\(ScenarioReference.plain(row.section)): \(line)" : line)
            }
        }
        if !meanings.isEmpty { text += ". " + meanings.joined(separator: " ") }
        return text
    }
}
