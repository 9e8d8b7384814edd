import Foundation

/// A size in bytes (`512MiB`, `2GiB`, `100MB`, `4096`).
public struct ByteCount: TextValue, Comparable {
    public var bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    static let units: [(String, UInt64)] = [
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("TiB", 1 << 40),
        ("KB", 1_000), ("MB", 1_000_000), ("GB", 1_000_000_000), ("TB", 1_000_000_000_000),
        ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("T", 1 << 40), ("B", 1),
    ]

    public init(parsing text: String) throws(ValueError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        let unitText = trimmed.dropFirst(number.count).trimmingCharacters(in: .whitespaces)
        guard let value = Double(number) else {
            throw ValueError("invalid size '\(text)': use bytes or a unit, like 512MiB, 2GiB or 100MB")
        }
        var multiplier: UInt64 = 1
        if !unitText.isEmpty {
            guard let unit = Self.units.first(where: { $0.0.lowercased() == unitText.lowercased() }) else {
                throw ValueError("invalid size '\(text)': unknown unit '\(unitText)' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)")
            }
            multiplier = unit.1
        }
        let total = value * Double(multiplier)
        guard total < 1.8e19 else { throw ValueError("size '\(text)' is too large") }
        bytes = UInt64(total.rounded())
    }

    /// The largest exact unit: `512MiB`, `100MB`, `1500`.
    public var description: String {
        if bytes == 0 { return "0" }
        for (name, size) in [("TiB", UInt64(1) << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
                             ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("KB", 1_000)]
        where bytes % size == 0 {
            return "\(bytes / size)\(name)"
        }
        return "\(bytes)"
    }

    public static func < (a: ByteCount, b: ByteCount) -> Bool { a.bytes < b.bytes }
}
