import Foundation

/// A non-negative duration from a scenario (`250ms`, `2s`, `1m30s`, `1h`), kept in microseconds.
public struct TimeSpan: TextValue, Comparable {
    public var microseconds: Int64

    public init(microseconds: Int64) { self.microseconds = microseconds }
    public static func milliseconds(_ value: Int64) -> TimeSpan { TimeSpan(microseconds: value * 1_000) }
    public static func seconds(_ value: Int64) -> TimeSpan { TimeSpan(microseconds: value * 1_000_000) }
    public static let zero = TimeSpan(microseconds: 0)

    /// Parses `250ms`, `2s`, `1m30s`, `1.5s`, `1h`, `500us`.
    public init(parsing text: String) throws(ValueError) {
        let units: [(String, Double)] = [
            ("ms", 1_000), ("us", 1), ("µs", 1), ("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000),
        ]
        let hint = "use a number with a unit, like 250ms, 2s, 1m30s or 1h"
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { throw ValueError("duration is empty: \(hint)") }
        if rest == "0" {
            microseconds = 0
            return
        }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number) else {
                throw ValueError("invalid duration '\(text)': \(hint)")
            }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else {
                if rest.isEmpty { throw ValueError("duration '\(text)' has no unit: \(hint)") }
                throw ValueError("invalid duration '\(text)': unknown unit '\(rest.prefix { !$0.isNumber })'; \(hint)")
            }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        guard total < 9.2e15 else { throw ValueError("duration '\(text)' is too long") }
        microseconds = Int64(total.rounded())
    }

    public var seconds: Double { Double(microseconds) / 1_000_000 }

    /// Canonical text: `1h30m`, `2s`, `250ms`, `1.5ms`.
    public var description: String {
        var us = microseconds
        if us == 0 { return "0s" }
        if us % 1_000_000 != 0 {
            if us < 1_000_000 {
                if us % 1_000 == 0 { return "\(us / 1_000)ms" }
                if us >= 1_000 { return "\(Self.trim(Double(us) / 1_000))ms" }
                return "\(us)us"
            }
            return "\(Self.trim(Double(us) / 1_000_000))s"
        }
        var text = ""
        let h = us / 3_600_000_000; us %= 3_600_000_000
        let m = us / 60_000_000; us %= 60_000_000
        let s = us / 1_000_000
        if h > 0 { text += "\(h)h" }
        if m > 0 { text += "\(m)m" }
        if s > 0 { text += "\(s)s" }
        return text
    }

    /// The form tc expects (`200ms`, `1500us`).
    public var tcArgument: String {
        if microseconds % 1_000 == 0 { return "\(microseconds / 1_000)ms" }
        return "\(microseconds)us"
    }

    /// A number with at most three decimals and no trailing zeros (`1.5`, `10`).
    public static func trim(_ value: Double) -> String {
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.microseconds < b.microseconds }
    public static func + (a: TimeSpan, b: TimeSpan) -> TimeSpan { TimeSpan(microseconds: a.microseconds + b.microseconds) }
    public static func - (a: TimeSpan, b: TimeSpan) -> TimeSpan { TimeSpan(microseconds: a.microseconds - b.microseconds) }
}
