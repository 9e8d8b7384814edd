import Foundation

/// A 5-field cron expression (minute hour day-of-month month day-of-week) or a macro, evaluated in a time zone.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
    private let text: String
    private let minutes: UInt64
    private let hours: UInt64
    private let daysOfMonth: UInt64
    private let months: UInt64
    private let daysOfWeek: UInt64
    /// Vixie cron treats a day field that starts with `*` as unrestricted when combining the two day fields.
    private let dayOfMonthIsStar: Bool
    private let dayOfWeekIsStar: Bool

    /// Parses five fields or a macro such as `@daily`; a bad expression is a usage error naming the field.
    public init(_ text: String) throws(FaultlineError) {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let fields: [Substring]
        if trimmed.hasPrefix("@") {
            fields = try Self.expand(macro: trimmed).split(separator: " ")
        } else {
            fields = trimmed.split(whereSeparator: \.isWhitespace)
            let expected = "expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily"
            guard !fields.isEmpty else { throw FaultlineError(.usage, "cron expression is empty: \(expected)") }
            guard fields.count == 5 else {
                throw FaultlineError(.usage, "cron expression '\(trimmed)' has \(fields.count) field\(fields.count == 1 ? "" : "s"): \(expected)")
            }
        }
        self.text = trimmed
        minutes = try Field.minute.parse(fields[0], in: trimmed)
        hours = try Field.hour.parse(fields[1], in: trimmed)
        daysOfMonth = try Field.dayOfMonth.parse(fields[2], in: trimmed)
        months = try Field.month.parse(fields[3], in: trimmed)
        let weekdays = try Field.dayOfWeek.parse(fields[4], in: trimmed)
        daysOfWeek = (weekdays & 0x7f) | ((weekdays >> 7) & 1)
        dayOfMonthIsStar = fields[2].hasPrefix("*")
        dayOfWeekIsStar = fields[4].hasPrefix("*")
    }

    /// The expression as given, trimmed.
    public var description: String { text }

    /// The first time strictly after `date` at which the expression fires, in `timeZone`; nil if none within 5 years.
    public func next(after date: Date, in timeZone: TimeZone) -> Date? {
        let instant = Int(date.timeIntervalSince1970.rounded(.down))
        let wallClock = instant + timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant)))
        let startDay = Self.floorDivide(wallClock, 86_400)
        let startMinute = (wallClock - startDay * 86_400) / 60
        let start = Self.civil(fromDays: startDay)
        let lastDay = Self.days(year: start.year + 5, month: start.month, day: start.day)

        var day = startDay
        while day <= lastDay {
            let (year, month, dayOfMonth) = Self.civil(fromDays: day)
            guard Self.has(months, month) else {
                day = month == 12 ? Self.days(year: year + 1, month: 1, day: 1) : Self.days(year: year, month: month + 1, day: 1)
                continue
            }
            if firesOn(dayOfMonth: dayOfMonth, dayOfWeek: Self.floorModulo(day + 4, 7)) {
                let firstMinute = day == startDay ? startMinute : 0
                for hour in firstMinute / 60..<24 where Self.has(hours, hour) {
                    for minute in 0..<60 where Self.has(minutes, minute) && hour * 60 + minute >= firstMinute {
                        let local = day * 86_400 + hour * 3_600 + minute * 60
                        if let fire = Self.firstInstant(ofWallClock: local, in: timeZone), Double(fire) > date.timeIntervalSince1970 {
                            return Date(timeIntervalSince1970: Double(fire))
                        }
                    }
                }
            }
            day += 1
        }
        return nil
    }

    private func firesOn(dayOfMonth: Int, dayOfWeek: Int) -> Bool {
        let domMatches = Self.has(daysOfMonth, dayOfMonth)
        let dowMatches = Self.has(daysOfWeek, dayOfWeek)
        if dayOfMonthIsStar || dayOfWeekIsStar { return domMatches && dowMatches }
        return domMatches || dowMatches
    }

    private static func expand(macro: String) throws(FaultlineError) -> String {
        let macros = [
            "@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
            "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
        ]
        if let fields = macros[macro.lowercased()] { return fields }
        if macro.lowercased() == "@reboot" {
            throw FaultlineError(.usage, "cron macro '\(macro)' is not supported: a schedule needs a time; use 5 fields or @hourly, @daily, @weekly, @monthly or @yearly")
        }
        let known = "@hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"
        let suggestion = Spelling.suggest(macro, among: Array(macros.keys).sorted()).map { " (did you mean '\($0)'?)" } ?? ""
        throw FaultlineError(.usage, "unknown cron macro '\(macro)'\(suggestion): use \(known)")
    }

    /// The earliest instant whose wall-clock time in `timeZone` is `local`; nil when that time is skipped by a DST change.
    private static func firstInstant(ofWallClock local: Int, in timeZone: TimeZone) -> Int? {
        var earliest: Int?
        for probe in [local - 86_400, local, local + 86_400] {
            let offset = timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(probe)))
            let instant = local - offset
            guard timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(instant))) == offset else { continue }
            earliest = min(earliest ?? instant, instant)
        }
        return earliest
    }

    private static func has(_ set: UInt64, _ value: Int) -> Bool { set >> UInt64(value) & 1 == 1 }

    private static func floorDivide(_ a: Int, _ b: Int) -> Int { (a - floorModulo(a, b)) / b }

    private static func floorModulo(_ a: Int, _ b: Int) -> Int { (a % b + b) % b }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar (Hinnant's `days_from_civil`).
    private static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The Gregorian date of a day counted from 1970-01-01 (Hinnant's `civil_from_days`).
    private static func civil(fromDays days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

extension CronExpression {
    /// One of the five fields: its name, its bounds and the names it accepts for numbers.
    private struct Field {
        let name: String
        let bounds: ClosedRange<Int>
        var names: [String] = []
        var namesHint = ""

        static let minute = Field(name: "minute", bounds: 0...59)
        static let hour = Field(name: "hour", bounds: 0...23)
        static let dayOfMonth = Field(name: "day-of-month", bounds: 1...31)
        static let month = Field(
            name: "month", bounds: 1...12,
            names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"],
            namesHint: " or a month name (jan-dec)"
        )
        static let dayOfWeek = Field(
            name: "day-of-week", bounds: 0...7,
            names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
            namesHint: " or a day name (sun-sat)"
        )

        /// The set of values the field's text selects, as bits.
        func parse(_ text: Substring, in expression: String) throws(FaultlineError) -> UInt64 {
            var set: UInt64 = 0
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard !item.isEmpty else {
                    throw FaultlineError(.usage, "cron field '\(name)' has an empty list item in '\(expression)': remove the extra comma")
                }
                let parts = item.split(separator: "/", omittingEmptySubsequences: false)
                let ends = parts[0].split(separator: "-", omittingEmptySubsequences: false)
                guard parts.count <= 2, ends.count <= 2, !parts.contains(where: \.isEmpty), !ends.contains(where: \.isEmpty) else {
                    throw FaultlineError(.usage, "cron field '\(name)' item '\(item)' is malformed in '\(expression)': expected *, a number, a range like 1-5, or a step like */15 or 1-5/2")
                }
                var step = 1
                if parts.count == 2 {
                    guard Self.isNumber(parts[1]) else {
                        throw FaultlineError(.usage, "cron field '\(name)' step '\(parts[1])' is not a number in '\(expression)'")
                    }
                    step = Int(parts[1]) ?? .max
                    guard step > 0 else {
                        throw FaultlineError(.usage, "cron field '\(name)' step '\(parts[1])' is zero in '\(expression)': expected a step of 1 or more")
                    }
                }
                let range: ClosedRange<Int>
                if parts[0] == "*" {
                    range = bounds
                } else {
                    let low = try value(ends[0], in: expression)
                    let high = ends.count == 2 ? try value(ends[1], in: expression) : parts.count == 2 ? bounds.upperBound : low
                    guard low <= high else {
                        let head = low == bounds.upperBound ? "\(low)" : "\(low)-\(bounds.upperBound)"
                        let tail = high == bounds.lowerBound ? "\(high)" : "\(bounds.lowerBound)-\(high)"
                        throw FaultlineError(.usage, "cron field '\(name)' range '\(parts[0])' is reversed in '\(expression)': expected the smaller value first; to wrap around write '\(head),\(tail)'")
                    }
                    range = low...high
                }
                for value in stride(from: range.lowerBound, through: range.upperBound, by: step) { set |= 1 << UInt64(value) }
            }
            return set
        }

        private func value(_ text: Substring, in expression: String) throws(FaultlineError) -> Int {
            let number: Int
            if Self.isNumber(text) {
                number = Int(text) ?? .max
            } else if let index = names.firstIndex(of: text.lowercased()) {
                number = bounds.lowerBound == 0 ? index : index + 1
            } else {
                let suggestion = Spelling.suggest(String(text), among: names).map { " (did you mean '\($0)'?)" } ?? ""
                throw FaultlineError(.usage, "cron field '\(name)' value '\(text)' is not a number\(namesHint) in '\(expression)'\(suggestion)")
            }
            guard bounds.contains(number) else {
                throw FaultlineError(.usage, "cron field '\(name)' value '\(text)' is out of range \(bounds.lowerBound)-\(bounds.upperBound) in '\(expression)'")
            }
            return number
        }

        private static func isNumber(_ text: Substring) -> Bool {
            !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber }
        }
    }
}
