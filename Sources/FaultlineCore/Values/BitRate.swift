import Foundation

/// A link rate in bits per second, written as tc writes it (`1mbit`, `500kbit`, `10mbps` for bytes).
public struct BitRate: TextValue, Comparable {
    public var bitsPerSecond: UInt64

    public init(bitsPerSecond: UInt64) { self.bitsPerSecond = bitsPerSecond }

    static let units: [(String, UInt64)] = [
        ("tbit", 1_000_000_000_000), ("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000), ("bit", 1),
        ("tbps", 8_000_000_000_000), ("gbps", 8_000_000_000), ("mbps", 8_000_000), ("kbps", 8_000), ("bps", 8),
    ]

    public init(parsing text: String) throws(ValueError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let number = trimmed.prefix { $0.isNumber || $0 == "." }
        let unitText = String(trimmed.dropFirst(number.count))
        let hint = "use a number with a tc unit, like 1mbit, 500kbit or 10mbps (bytes per second)"
        guard let value = Double(number) else { throw ValueError("invalid rate '\(text)': \(hint)") }
        guard let unit = Self.units.first(where: { $0.0 == unitText }) else {
            if unitText.isEmpty { throw ValueError("rate '\(text)' has no unit: \(hint)") }
            throw ValueError("invalid rate '\(text)': unknown unit '\(unitText)'; \(hint)")
        }
        let total = value * Double(unit.1)
        guard total >= 8 else { throw ValueError("rate '\(text)' is too low: the least is 8bit (1 byte per second)") }
        guard total < 1.8e19 else { throw ValueError("rate '\(text)' is too high") }
        bitsPerSecond = UInt64(total.rounded())
    }

    /// `1mbit`, `1500kbit`, `12bit` — the form tc accepts.
    public var description: String {
        for (name, size) in Self.units.prefix(4) where bitsPerSecond % size == 0 {
            return "\(bitsPerSecond / size)\(name)"
        }
        return "\(bitsPerSecond)bit"
    }

    /// Bytes per second.
    public var bytesPerSecond: UInt64 { bitsPerSecond / 8 }

    public static func < (a: BitRate, b: BitRate) -> Bool { a.bitsPerSecond < b.bitsPerSecond }
}
