/// One problem in a scenario file, with where it is: `file:line:column: key.path: message`.
public struct Diagnostic: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    /// The key path, like `spec.faults[0].delay`; empty for the document itself.
    public var path: String
    public var message: String

    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    public var description: String {
        "\(file):\(line):\(column): " + (path.isEmpty ? "" : "\(path): ") + message
    }
}

/// Every problem found in one scenario file; nothing of such a file is applied.
public struct ScenarioErrors: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// A key path inside a scenario (`spec.faults[0].to.hosts[1]`).
struct NodePath: Sendable, Hashable, CustomStringConvertible {
    var description: String

    static let root = NodePath(description: "")

    func key(_ key: String) -> NodePath {
        NodePath(description: description.isEmpty ? key : "\(description).\(key)")
    }

    func index(_ index: Int) -> NodePath { NodePath(description: "\(description)[\(index)]") }
}
