import Foundation

/// The format's documentation per key path, read from the key tables of docs/scenario-format.md (kept in step by
/// scripts/generate-scenario-reference and a test), joined to the key paths the loader allows (`ScenarioSchema`):
/// what `faultline explain` prints and what the JSON Schema describes.
public enum ScenarioReference {
    /// One row of a key table: the key, the section it is documented in, and its columns.
    public struct Entry: Sendable, Hashable {
        public var path: String
        /// The key cell as written, which may name keys under the path: `spec.target.mode` (`.fixed`, `.percent`).
        public var keyCell: String
        /// "14.2 `latency`".
        public var section: String
        public var type: String
        public var defaultValue: String
        public var example: String
        public var meaning: String
    }

    public static let entries: [Entry] = entries(fromMarkdown: text)

    /// The headings and key-table rows of the format's Markdown, as the generator keeps them.
    public static func extract(fromMarkdown markdown: String) -> String {
        markdown.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            (line.hasPrefix("## ") || line.hasPrefix("### ")) || ["apiVersion", "kind", "metadata", "spec"].contains { line.hasPrefix("| `\($0)") }
        }.joined(separator: "\n")
    }

    static func entries(fromMarkdown markdown: String) -> [Entry] {
        var section = ""
        var result: [Entry] = []
        for line in markdown.split(separator: "\n") {
            if line.hasPrefix("#") {
                section = String(line.drop { $0 == "#" || $0 == " " })
                continue
            }
            guard line.hasPrefix("| `") else { continue }
            let cells = line.dropFirst().dropLast().split(separator: "|", omittingEmptySubsequences: false)
                .map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 5 else { continue }
            // `spec.faults[].target.mode` (`.fixed`, `.percent`): the path, and the keys under it the row covers.
            let path = cells[0].split(separator: "`", omittingEmptySubsequences: true).first.map(String.init) ?? cells[0]
            result.append(Entry(path: path, keyCell: cells[0], section: section,
                                type: cells[1], defaultValue: cells[2], example: cells[3], meaning: cells[4]))
        }
        return result
    }

    /// `spec.faults.to` and `spec.faults[].to` are the same key; `[]` marks a list.
    public static func normalize(_ path: String) -> String {
        path.replacingOccurrences(of: "[]", with: "")
    }

    /// The key path as the format writes it (`spec.faults[].to`) for any spelling of it, nil for no such key.
    public static func canonical(_ path: String) -> String? {
        let wanted = normalize(path)
        return ScenarioSchema.allKeyPaths.first { normalize($0) == wanted }
    }

    /// The keys one level under `path` ("" for the top level).
    public static func children(of path: String) -> [String] {
        let prefix = path.isEmpty ? "" : normalize(path) + "."
        var seen: [String] = []
        for key in ScenarioSchema.allKeyPaths {
            let normal = normalize(key)
            guard normal.hasPrefix(prefix) else { continue }
            let rest = normal.dropFirst(prefix.count)
            guard !rest.isEmpty, !rest.contains(".") else { continue }
            if !seen.contains(String(rest)) { seen.append(String(rest)) }
        }
        return seen
    }

    /// The documentation rows of one key path: its own, else its parent's where that row names it (`(.fixed,
    /// .percent)` in the key cell, `{file: PATH}` in the type).
    public static func entries(for path: String) -> [Entry] {
        let wanted = normalize(path)
        let own = entries.filter { normalize($0.path) == wanted }
        guard own.isEmpty, let dot = wanted.lastIndex(of: ".") else { return own }
        let parent = String(wanted[..<dot]), key = wanted[wanted.index(after: dot)...]
        return entries.filter { row in
            normalize(row.path) == parent && (row.keyCell.contains("`.\(key)`") || row.type.contains("\(key):"))
        }
    }

    /// Why `path` is not a key of the format, with the nearest one; nil when it is one.
    public static func unknown(_ path: String) -> String? {
        guard !path.isEmpty, canonical(path) == nil else { return nil }
        let all = ScenarioSchema.allKeyPaths
        let suggestion = Spelling.suggest(normalize(path), among: all.map(normalize)).flatMap { near in all.first { normalize($0) == near } }
        return "'\(path)' is not a key of the scenario format" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
            + " ('faultline explain' lists the top-level keys)"
    }

    /// `faultline explain PATH`: the key's type, default and meaning in each section that documents it, and the keys
    /// under it; a fault type's name (`latency`) gives that type's parameters.
    public static func explain(_ argument: String) -> String? {
        if let type = FaultType(rawValue: argument) { return explain(faultType: type) }
        if argument.isEmpty {
            return "Keys of a scenario (faultline explain KEY for one; KEY.SUBKEY under it):\n" + list(children(of: ""), under: "")
        }
        guard let path = canonical(argument) else { return nil }
        var out = path + "\n"
        let rows = entries(for: path)
        // The same key documented alike in several sections (to, except of the tc faults) is shown once, with them all.
        var groups: [(row: Entry, sections: [String])] = []
        for row in rows {
            if let index = groups.firstIndex(where: { $0.row.type == row.type && $0.row.defaultValue == row.defaultValue && $0.row.meaning == row.meaning }) {
                groups[index].sections.append(row.section)
            } else {
                groups.append((row, [row.section]))
            }
        }
        for (row, sections) in groups {
            out += "\n  " + (sections.count == 1 ? "in " : "in each of ") + sections.map(plain).joined(separator: "; ") + ":\n"
            out += "    type:    \(plain(row.type))\n"
            if !row.defaultValue.isEmpty { out += "    default: \(plain(row.defaultValue))\n" }
            if !row.example.isEmpty { out += "    example: \(plain(row.example))\n" }
            if !row.meaning.isEmpty { out += wrap(plain(row.meaning), indent: "    ") }
        }
        if path == "spec.faults[].type" {
            out += "\n  fault types: " + FaultType.allCases.map(\.rawValue).joined(separator: ", ") + " (faultline explain TYPE for one)\n"
        }
        let under = children(of: path)
        if !under.isEmpty { out += "\nKeys under it:\n" + list(under, under: path) }
        return out
    }

    static func explain(faultType type: FaultType) -> String {
        let section = entries.first { $0.section.hasSuffix("`\(type.rawValue)`") || $0.section.contains("`\(type.rawValue)`") }?.section
        var out = "fault type \(type.rawValue)" + (section.map { " (docs/scenario-format.md §\(plain($0)))" } ?? "") + "\n\nKeys besides name, type, start, duration and target:\n"
        for key in ScenarioSchema.faultParameters[type] ?? [] {
            let rows = entries(for: "spec.faults[].\(key)")
            let row = rows.first { $0.section == section } ?? rows.first
            out += "  \(key.padding(toLength: 14, withPad: " ", startingAt: 0))" + shortened(row.map { plain($0.meaning.isEmpty ? $0.type : $0.meaning) } ?? "", to: 84) + "\n"
        }
        return out
    }

    static func list(_ keys: [String], under path: String) -> String {
        let width = (keys.map(\.count).max() ?? 0) + 2
        return keys.map { key in
            let full = canonical(path.isEmpty ? key : path + "." + key) ?? key
            let summary = entries(for: full).first.map { plain($0.meaning.isEmpty ? $0.type : $0.meaning) } ?? ""
            return "  " + key.padding(toLength: width, withPad: " ", startingAt: 0) + shortened(summary, to: 96 - width) + "\n"
        }.joined()
    }

    /// `text` cut at a word boundary to at most `limit` characters, with "..." when cut.
    static func shortened(_ text: String, to limit: Int) -> String {
        guard text.count > limit else { return text }
        let cut = text.prefix(limit - 3)
        return String(cut[..<(cut.lastIndex(of: " ") ?? cut.endIndex)]) + "..."
    }

    /// Markdown of a table cell as plain text: no backticks, bold or link targets.
    public static func plain(_ markdown: String) -> String {
        var text = markdown.replacingOccurrences(of: "`", with: "").replacingOccurrences(of: "**", with: "")
        // [words](target) → words
        while let open = text.range(of: "]("), let close = text[open.upperBound...].firstIndex(of: ")"),
              let start = text[..<open.lowerBound].lastIndex(of: "[") {
            let words = text[text.index(after: start)..<open.lowerBound]
            text.replaceSubrange(start...close, with: words)
        }
        return text
    }

    static func wrap(_ text: String, indent: String, width: Int = 100) -> String {
        var out = "", line = indent
        for word in text.split(separator: " ") {
            if line.count + word.count + 1 > width, line != indent {
                out += line + "\n"
                line = indent
            }
            line += (line == indent ? "" : " ") + word
        }
        return out + line + "\n"
    }
}
