import Yams

/// The keys of one YAML mapping, checked against an allow-list, with their nodes.
struct Fields {
    let node: Node
    let path: NodePath
    let values: [String: Node]
    let keyNodes: [String: Node]
    /// Keys that were not allowed (already reported).
    let unknownKeys: [String]

    /// True when the mapping has no keys at all, known or not.
    var isEmpty: Bool { values.isEmpty && unknownKeys.isEmpty }

    func has(_ key: String) -> Bool { values[key] != nil }
    subscript(key: String) -> Node? { values[key] }
}

/// Reads YAML nodes into typed values, collecting every problem with its position instead of stopping.
final class NodeReader {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String) { self.file = file }

    // MARK: Reporting

    func error(_ message: String, at node: Node?, _ path: NodePath) {
        let mark = node?.mark
        diagnostics.append(Diagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1,
                                      path: Self.escaped(path.description), message: Self.escaped(message)))
    }

    /// Control characters written as escapes, so that one error stays on one line.
    static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return text }
        return text.unicodeScalars.map { scalar -> String in
            switch scalar {
            case "\n": "\\n"
            case "\t": "\\t"
            case "\r": "\\r"
            default: scalar.properties.generalCategory == .control ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
            }
        }.joined()
    }

    /// `a mapping`, `a list`, `nothing`, `'text'`.
    func describe(_ node: Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .scalar(let scalar): return isNull(node) ? "nothing" : "'\(scalar.string)'"
        case .alias: return "an alias"
        }
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar(let scalar) = node, scalar.style == .plain || scalar.style == .any else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    // MARK: Structure

    /// The mapping's keys, with unknown and duplicate keys reported; nil if the node is no mapping.
    func fields(_ node: Node, _ path: NodePath, allowed: [String], what: String = "a mapping",
                hint: (String) -> String? = { _ in nil }) -> Fields? {
        guard case .mapping(let mapping) = node else {
            error("expected \(what), got \(describe(node))", at: node, path)
            return nil
        }
        var values: [String: Node] = [:]
        var keyNodes: [String: Node] = [:]
        var unknown: [String] = []
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                error("keys must be plain text, got \(describe(keyNode))", at: keyNode, path)
                continue
            }
            let key = scalar.string
            if values[key] != nil {
                error("duplicate key '\(key)'", at: keyNode, path)
                continue
            }
            if key == "<<" {
                error("YAML merge keys ('<<') are not supported: write the keys out", at: keyNode, path)
                unknown.append(key)
                continue
            }
            guard allowed.contains(key) else {
                unknown.append(key)
                if let special = hint(key) {
                    error(special, at: keyNode, path)
                } else if let near = Spelling.suggest(key, among: allowed) {
                    error("unknown key '\(key)' (did you mean '\(near)'?)", at: keyNode, path)
                } else {
                    error("unknown key '\(key)' (allowed: \(allowed.joined(separator: ", ")))", at: keyNode, path)
                }
                continue
            }
            values[key] = value
            keyNodes[key] = keyNode
        }
        return Fields(node: node, path: path, values: values, keyNodes: keyNodes, unknownKeys: unknown)
    }

    /// Decodes a key that must be there.
    func required<T>(_ fields: Fields, _ key: String, _ decode: (Node, NodePath) -> T?, why: String? = nil) -> T? {
        guard let node = fields[key] else {
            // A misspelling of this key was already reported with "did you mean"; one error is enough.
            // So was a merge key, which may have been meant to bring it.
            if fields.unknownKeys.contains(where: { $0 == "<<" || Spelling.suggest($0, among: [key]) != nil }) { return nil }
            error("missing required key '\(key)'" + (why.map { " (\($0))" } ?? ""), at: fields.node, fields.path)
            return nil
        }
        return decode(node, fields.path.key(key))
    }

    /// Decodes a key that may be absent; nil when absent or invalid (the latter reported).
    func optional<T>(_ fields: Fields, _ key: String, _ decode: (Node, NodePath) -> T?) -> T? {
        guard let node = fields[key] else { return nil }
        return decode(node, fields.path.key(key))
    }

    /// A list of items, each decoded; nil when the node is no list or any item is invalid.
    func list<T>(_ node: Node, _ path: NodePath, allowEmpty: Bool = true, _ decode: (Node, NodePath) -> T?) -> [T]? {
        guard case .sequence(let sequence) = node else {
            error("expected a list, got \(describe(node))", at: node, path)
            return nil
        }
        if !allowEmpty && sequence.isEmpty {
            error("must not be empty", at: node, path)
            return nil
        }
        var items: [T] = []
        var failed = false
        for (index, item) in sequence.enumerated() {
            if let value = decode(item, path.index(index)) { items.append(value) } else { failed = true }
        }
        return failed ? nil : items
    }

    /// A list of items, or one item given alone.
    func listOrOne<T>(_ node: Node, _ path: NodePath, _ decode: (Node, NodePath) -> T?) -> [T]? {
        if case .sequence = node { return list(node, path, allowEmpty: false, decode) }
        return decode(node, path).map { [$0] }
    }

    // MARK: Scalars

    func scalarText(_ node: Node, _ path: NodePath, what: String) -> String? {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            error("expected \(what), got \(describe(node))", at: node, path)
            return nil
        }
        return scalar.string
    }

    func string(_ node: Node, _ path: NodePath) -> String? {
        scalarText(node, path, what: "a string")
    }

    func nonEmptyString(_ node: Node, _ path: NodePath) -> String? {
        guard let text = string(node, path) else { return nil }
        if text.isEmpty { error("must not be empty", at: node, path); return nil }
        return text
    }

    func int(_ node: Node, _ path: NodePath, range: ClosedRange<Int>? = nil) -> Int? {
        guard let text = scalarText(node, path, what: "an integer") else { return nil }
        guard let value = Int(text) else {
            error("expected an integer, got '\(text)'", at: node, path)
            return nil
        }
        if let range, !range.contains(value) {
            error("\(value) is out of range \(range.lowerBound)–\(range.upperBound)", at: node, path)
            return nil
        }
        return value
    }

    func number(_ node: Node, _ path: NodePath) -> Double? {
        guard let text = scalarText(node, path, what: "a number") else { return nil }
        guard let value = decimalNumber(text) else {
            error("expected a number, got '\(text)'", at: node, path)
            return nil
        }
        return value
    }

    func positiveNumber(_ node: Node, _ path: NodePath) -> Double? {
        guard let value = number(node, path) else { return nil }
        guard value > 0 else { error("must be greater than 0, got \(TimeSpan.trim(value))", at: node, path); return nil }
        return value
    }

    func bool(_ node: Node, _ path: NodePath) -> Bool? {
        guard let text = scalarText(node, path, what: "true or false") else { return nil }
        switch text {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default:
            error("expected true or false, got '\(text)'", at: node, path)
            return nil
        }
    }

    /// A typed value parsed from a scalar's text.
    func value<T: TextValue>(_ type: T.Type, what: String) -> (Node, NodePath) -> T? {
        { node, path in
            guard let text = self.scalarText(node, path, what: what) else { return nil }
            do throws(ValueError) { return try T(parsing: text) } catch {
                self.error(error.message, at: node, path)
                return nil
            }
        }
    }

    /// One of a fixed set of words, with a suggestion for near spellings.
    func choice<T: RawRepresentable & CaseIterable>(_ type: T.Type, what: String) -> (Node, NodePath) -> T? where T.RawValue == String {
        { node, path in
            guard let text = self.scalarText(node, path, what: what) else { return nil }
            if let value = T(rawValue: text) { return value }
            let names = T.allCases.map(\.rawValue)
            let near = Spelling.suggest(text, among: names).map { " (did you mean '\($0)'?)" } ?? " (use \(names.joined(separator: ", ")))"
            self.error("unknown \(what) '\(text)'\(near)", at: node, path)
            return nil
        }
    }

    func stringMap(_ node: Node, _ path: NodePath) -> [String: String]? {
        guard case .mapping(let mapping) = node else {
            error("expected a mapping of strings, got \(describe(node))", at: node, path)
            return nil
        }
        var result: [String: String] = [:]
        var failed = false
        for (keyNode, value) in mapping {
            guard let key = string(keyNode, path), let text = string(value, path.key(key)) else { failed = true; continue }
            if result[key] != nil { error("duplicate key '\(key)'", at: keyNode, path); failed = true }
            result[key] = text
        }
        return failed ? nil : result
    }

    /// An http(s) URL with a host.
    func url(_ node: Node, _ path: NodePath) -> String? {
        guard let text = nonEmptyString(node, path) else { return nil }
        let lower = text.lowercased()
        let scheme = ["http://", "https://"].first { lower.hasPrefix($0) }
        let rest = scheme.map { text.dropFirst($0.count) } ?? ""
        let authority = rest.split(separator: "/", omittingEmptySubsequences: false).first ?? ""
        let host = authority.hasPrefix("[") ? authority.prefix { $0 != "]" } : authority.prefix { $0 != ":" }
        guard scheme != nil, !host.isEmpty,
              !text.contains(where: { $0.isWhitespace }) else {
            error("invalid URL '\(text)': use an http:// or https:// URL with a host", at: node, path)
            return nil
        }
        return text
    }
}
