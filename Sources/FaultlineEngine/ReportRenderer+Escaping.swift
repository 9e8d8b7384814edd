import Foundation

/// Text from a scenario (its description, its runbook) made inert in the Markdown and HTML reports.
extension ReportRenderer {
    /// `text` as Markdown that shows exactly these characters: no HTML, no emphasis, links, code, headings or lists.
    static func markdownText(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            var out = ""
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            for character in trimmed {
                switch character {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\\", "`", "*", "_", "[", "]", "|", "~": out += "\\\(character)"
                case "\r": break
                default: out.append(character)
                }
            }
            return blockMarkerEscaped(out)
        }.joined(separator: "\n")
    }

    /// A line that would start a heading, list, rule or setext underline, with that marker escaped.
    static func blockMarkerEscaped(_ line: String) -> String {
        guard let first = line.first else { return line }
        if "#-+=".contains(first) { return "\\" + line }
        let digits = line.prefix { $0.isASCII && $0.isNumber }
        if !digits.isEmpty, let after = line.dropFirst(digits.count).first, after == "." || after == ")" {
            return digits + "\\" + line.dropFirst(digits.count)
        }
        return line
    }

    /// Markdown for one table cell: inert text on one line.
    static func markdownCell(_ text: String) -> String {
        markdownText(text.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: " "))
    }

    /// The runbook as a Markdown link when it is an http(s) URL, else as inert text.
    static func markdownRunbook(_ runbook: String) -> String {
        guard let url = linkable(runbook) else { return markdownCell(runbook) }
        return "<\(url)>"
    }

    /// The runbook as an HTML link when it is an http(s) URL, else as escaped text.
    static func htmlRunbook(_ runbook: String) -> String {
        guard let url = linkable(runbook) else { return escape(runbook) }
        return "<a href=\"\(escape(url))\">\(escape(runbook))</a>"
    }

    /// An http or https URL with a host, with the characters that could end a link or a table cell percent-encoded;
    /// nil for anything else (`javascript:`, a relative path, text with spaces).
    static func linkable(_ text: String) -> String? {
        let lower = text.lowercased()
        guard let scheme = ["http://", "https://"].first(where: { lower.hasPrefix($0) }),
              !text.contains(where: { $0.isWhitespace || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } }) else {
            return nil
        }
        let authority = text.dropFirst(scheme.count).prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.hasPrefix(":"), !authority.hasPrefix("@") else { return nil }
        let encoded: [Character: String] = ["<": "%3C", ">": "%3E", "\"": "%22", "`": "%60", "|": "%7C", "\\": "%5C", "'": "%27"]
        return text.reduce(into: "") { out, character in out += encoded[character] ?? String(character) }
    }
}
