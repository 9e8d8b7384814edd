import Foundation

/// A port or an inclusive range of ports, 1–65535 (`5432`, `8000-8100`).
public struct PortRange: TextValue, Comparable {
    public let lower: UInt16
    public let upper: UInt16

    public init(_ lower: UInt16, _ upper: UInt16? = nil) {
        self.lower = lower
        self.upper = upper ?? lower
    }

    public init(parsing text: String) throws(ValueError) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        // Digits only, no sign, space or leading zero: '08080' and '8080 ' are typos more often than ports.
        let digits = parts.allSatisfy { !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) && ($0.count == 1 || $0.first != "0") }
        guard parts.count <= 2, digits, let low = Int(parts[0]), let high = Int(parts.last!) else {
            throw ValueError("invalid port '\(text)': use a number from 1 to 65535 or a range like 8000-8100")
        }
        for port in [low, high] where !(1...65535).contains(port) {
            throw ValueError("port \(port) is out of range 1–65535")
        }
        guard low <= high else { throw ValueError("port range '\(text)' runs backwards: write \(high)-\(low)") }
        lower = UInt16(low)
        upper = UInt16(high)
    }

    public var isSinglePort: Bool { lower == upper }
    public var description: String { isSinglePort ? "\(lower)" : "\(lower)-\(upper)" }
    /// The form iptables `--dport` takes (`8000:8100`).
    public var iptablesArgument: String { isSinglePort ? "\(lower)" : "\(lower):\(upper)" }
    public func contains(_ port: UInt16) -> Bool { (lower...upper).contains(port) }

    /// The (value, mask) pairs that cover this range exactly, for u32 matches.
    public var maskedBlocks: [(value: UInt16, mask: UInt16)] {
        var blocks: [(UInt16, UInt16)] = []
        var start = UInt32(lower)
        let end = UInt32(upper)
        while start <= end {
            var size: UInt32 = 1
            while start % (size * 2) == 0, start + size * 2 - 1 <= end, size * 2 <= 65536 { size *= 2 }
            blocks.append((UInt16(start), UInt16(truncatingIfNeeded: 0x1_0000 - size)))
            start += size
        }
        return blocks
    }

    public static func < (a: PortRange, b: PortRange) -> Bool { (a.lower, a.upper) < (b.lower, b.upper) }
}
