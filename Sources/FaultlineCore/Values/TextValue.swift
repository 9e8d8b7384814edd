/// A typed value written as text in scenarios, plans and reports (`2s`, `25%`, `1mbit`).
public protocol TextValue: Codable, Sendable, Hashable, CustomStringConvertible {
    /// Parses the user's text, or says what is wrong with it.
    init(parsing text: String) throws(ValueError)
}

extension TextValue {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text: String
        if let string = try? container.decode(String.self) {
            text = string
        } else if let integer = try? container.decode(Int.self) {
            text = String(integer)
        } else {
            text = String(try container.decode(Double.self))
        }
        do { try self.init(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
