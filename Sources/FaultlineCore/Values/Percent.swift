import Foundation

/// A percentage from 0% to 100% (`25%`, `0.5%`, or a bare number).
public struct Percent: TextValue, Comparable {
    public var value: Double

    public init(_ value: Double) { self.value = value }

    public init(parsing text: String) throws(ValueError) {
        var body = text.trimmingCharacters(in: .whitespaces)
        if body.hasSuffix("%") { body.removeLast() }
        guard let number = decimalNumber(body.trimmingCharacters(in: .whitespaces)) else {
            throw ValueError("invalid percentage '\(text)': use a number from 0 to 100, like 25%")
        }
        guard number == 0 || number >= Self.smallest else {
            throw ValueError("percentage '\(text)' is below the smallest share the kernel can apply, 0.0001%")
        }
        if !text.contains("%"), number > 0, number < 1 {
            let fraction = number * 100
            throw ValueError("'\(text)' would be read as \(text)%: a bare number is a percentage, so write \(text)% if that is meant"
                + (fraction <= 100 && fraction >= 0.001 ? ", or \(TimeSpan.trim(fraction))% for the fraction" : ""))
        }
        guard (0...100).contains(number) else {
            throw ValueError("percentage '\(text)' is out of range: use 0% to 100%")
        }
        value = number
    }

    /// The smallest share above 0 that netem and iptables' statistic match resolve (one in a million).
    public static let smallest = 0.0001

    /// `25%`, `0.5%`.
    public var description: String { "\(TimeSpan.trim(value))%" }
    /// The share as a fraction (25% → 0.25).
    public var fraction: Double { value / 100 }

    public static func < (a: Percent, b: Percent) -> Bool { a.value < b.value }
}
