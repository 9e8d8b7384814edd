import Yams

/// Turns scenario text into a `Scenario`, or into every problem it has, each with its position.
public enum ScenarioLoader {
    /// Loads one scenario from YAML (or JSON) text; `file` is used in messages.
    public static func load(yaml text: String, file: String) throws(ScenarioErrors) -> Scenario {
        let reader = NodeReader(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ScenarioErrors([yamlDiagnostic(error, file: file, text: text)])
        } catch {
            throw ScenarioErrors([Diagnostic(file: file, line: 1, column: 1, path: "", message: "invalid YAML: \(error)")])
        }
        guard let root, !reader.isNull(root) else {
            throw ScenarioErrors([Diagnostic(file: file, line: 1, column: 1, path: "",
                                             message: "file is empty: a scenario needs apiVersion, kind, metadata and spec")])
        }
        reportCustomTags(root, reader: reader)
        let scenario = ScenarioDecoder(reader: reader).scenario(root)
        let sorted = reader.diagnostics.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
        guard sorted.isEmpty, let scenario else { throw ScenarioErrors(sorted) }
        return scenario
    }

    /// A custom tag (`!foo 20s`) would be ignored: each is an error at its node, so nothing is read other than written.
    static func reportCustomTags(_ node: Node, reader: NodeReader) {
        let tag = node.tag.rawValue
        if !tag.isEmpty, tag != "!", tag != "?", !tag.hasPrefix("tag:yaml.org,2002:") {
            reader.error("YAML tag '\(tag)' is not supported: remove it (values are read by their key)", at: node, .root)
        }
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                reportCustomTags(key, reader: reader)
                reportCustomTags(value, reader: reader)
            }
        case .sequence(let sequence):
            for item in sequence { reportCustomTags(item, reader: reader) }
        case .scalar, .alias:
            break
        }
    }

    /// Where `key` is written again after its first use (Yams reports only the first).
    static func secondOccurrence(of key: String, in text: String, after mark: Mark) -> (Int, Int)? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for index in (mark.line - 1)..<lines.count {
            let chars = Array(lines[index])
            var start = index == mark.line - 1 ? mark.column - 1 + key.count : 0
            while start < chars.count {
                guard let found = String(chars[start...]).range(of: key) else { break }
                let column = start + String(chars[start...]).distance(from: String(chars[start...]).startIndex, to: found.lowerBound)
                let before = column == 0 ? " " : chars[column - 1]
                let after = chars[(column + key.count)...].drop { $0 == " " }.first
                if " {,\"'".contains(before) || before == "\t", after == ":" || after == "\"" || after == "'" {
                    return (index + 1, column + 1)
                }
                start = column + 1
            }
        }
        return nil
    }

    static func yamlDiagnostic(_ error: YamlError, file: String, text: String) -> Diagnostic {
        func make(_ problem: String, _ context: YamlError.Context?, _ mark: Mark) -> Diagnostic {
            var message = "invalid YAML: \(problem)"
            if let context { message += " (\(context.text) at \(context.mark.line):\(context.mark.column))" }
            return Diagnostic(file: file, line: mark.line, column: mark.column, path: "", message: message)
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            return make(problem, context, mark)
        case .reader(let problem, let offset, _, _):
            var line = 1, column = 1
            if let offset {
                for byte in text.utf8.prefix(offset) {
                    if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
                }
            }
            return Diagnostic(file: file, line: line, column: column, path: "", message: "cannot read the file: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let key = duplicates.first ?? "?"
            let (line, column) = secondOccurrence(of: key, in: text, after: context.mark) ?? (context.mark.line, context.mark.column)
            return Diagnostic(file: file, line: line, column: column, path: "",
                              message: "duplicate key '\(key)' (first at \(context.mark.line):\(context.mark.column))")
        default:
            return Diagnostic(file: file, line: 1, column: 1, path: "", message: "invalid YAML: \(error)")
        }
    }
}
