/// A scenario, fault or probe name: a lowercase DNS label (a–z, 0–9, `-`), at most 63 characters.
public struct ResourceName: TextValue, Comparable {
    public let rawValue: String

    public init(parsing text: String) throws(ValueError) {
        guard !text.isEmpty else { throw ValueError("name is empty") }
        guard text.count <= 63 else { throw ValueError("name '\(text)' is longer than 63 characters") }
        guard text.allSatisfy({ ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }),
              text.first != "-", text.last != "-" else {
            throw ValueError("invalid name '\(text)': use lowercase letters, digits and '-', starting and ending with a letter or digit")
        }
        rawValue = text
    }

    public var description: String { rawValue }
    public static func < (a: ResourceName, b: ResourceName) -> Bool { a.rawValue < b.rawValue }
}
