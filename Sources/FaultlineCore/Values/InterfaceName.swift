/// A Linux network interface name: 1–15 bytes, no `/`, `:` or whitespace, not `.` or `..`; no `+` (an iptables wildcard).
public struct InterfaceName: TextValue {
    public let rawValue: String

    public init(parsing text: String) throws(ValueError) {
        guard !text.isEmpty else { throw ValueError("interface name is empty") }
        guard text.utf8.count <= 15 else {
            throw ValueError("interface name '\(text)' is longer than 15 characters")
        }
        guard text != ".", text != ".." else { throw ValueError("interface name '\(text)' is not allowed") }
        if let bad = text.first(where: { $0 == "/" || $0 == ":" || $0.isWhitespace || $0.asciiValue.map { $0 < 32 || $0 == 127 } ?? false }) {
            throw ValueError("interface name '\(text)' contains \(bad.isWhitespace ? "whitespace" : "'\(bad)'"), which Linux does not allow")
        }
        // iptables reads `rt+` as every interface whose name starts with `rt`: a fault on one would hit them all.
        guard !text.contains("+") else {
            throw ValueError("interface name '\(text)' contains '+', an iptables wildcard (it would match every interface starting with '\(text.prefix { $0 != "+" })'): name one interface exactly")
        }
        rawValue = text
    }

    public var description: String { rawValue }
}
