import FaultlineCore
import Foundation
import Testing

@Suite struct CronExpressionTests {
    private func date(_ text: String) throws -> Date {
        try Date(text, strategy: .iso8601)
    }

    private func fires(_ expression: String, after start: String, count: Int = 1, in zone: String = "UTC") throws -> [Date] {
        let cron = try CronExpression(expression)
        let timeZone = try #require(TimeZone(identifier: zone))
        var times: [Date] = []
        var cursor = try date(start)
        for _ in 0..<count {
            guard let next = cron.next(after: cursor, in: timeZone) else { break }
            times.append(next)
            cursor = next
        }
        return times
    }

    private func dates(_ texts: [String]) throws -> [Date] {
        var result: [Date] = []
        for text in texts { result.append(try date(text)) }
        return result
    }

    @Test(arguments: [
        ("@hourly", ["2026-05-13T11:00:00Z", "2026-05-13T12:00:00Z"]),
        ("@daily", ["2026-05-14T00:00:00Z", "2026-05-15T00:00:00Z"]),
        ("@midnight", ["2026-05-14T00:00:00Z", "2026-05-15T00:00:00Z"]),
        ("@weekly", ["2026-05-17T00:00:00Z", "2026-05-24T00:00:00Z"]),
        ("@monthly", ["2026-06-01T00:00:00Z", "2026-07-01T00:00:00Z"]),
        ("@yearly", ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
        ("@annually", ["2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z"]),
    ])
    func macrosFireAtTheirStandardTimes(_ macro: String, _ expected: [String]) throws {
        #expect(try fires(macro, after: "2026-05-13T10:17:00Z", count: 2) == dates(expected))
    }

    @Test func macrosKeepTheirTextAndAcceptAnyCase() throws {
        #expect(try CronExpression("@daily").description == "@daily")
        #expect(try fires("@DAILY", after: "2026-05-13T10:17:00Z") == dates(["2026-05-14T00:00:00Z"]))
    }

    @Test func descriptionIsTheTrimmedTextAndFieldsMaySeparateByTabs() throws {
        #expect(try CronExpression("  0 9 * * *\n").description == "0 9 * * *")
        #expect(try fires("0\t9 *  * *", after: "2026-05-13T10:17:00Z") == dates(["2026-05-14T09:00:00Z"]))
    }

    @Test func stepsOverRangesAndStars() throws {
        #expect(try fires("*/20 9-10 * * *", after: "2026-05-13T08:59:00Z", count: 7) == dates([
            "2026-05-13T09:00:00Z", "2026-05-13T09:20:00Z", "2026-05-13T09:40:00Z",
            "2026-05-13T10:00:00Z", "2026-05-13T10:20:00Z", "2026-05-13T10:40:00Z",
            "2026-05-14T09:00:00Z",
        ]))
    }

    @Test func listsMixNumbersRangesAndSteps() throws {
        #expect(try fires("5,10-12,50-59/5 7 * * *", after: "2026-05-13T07:00:00Z", count: 7) == dates([
            "2026-05-13T07:05:00Z", "2026-05-13T07:10:00Z", "2026-05-13T07:11:00Z", "2026-05-13T07:12:00Z",
            "2026-05-13T07:50:00Z", "2026-05-13T07:55:00Z", "2026-05-14T07:05:00Z",
        ]))
    }

    @Test func aStepFromAStartRunsToTheFieldMaximum() throws {
        #expect(try fires("10/20 22/1 * * *", after: "2026-05-13T21:00:00Z", count: 7) == dates([
            "2026-05-13T22:10:00Z", "2026-05-13T22:30:00Z", "2026-05-13T22:50:00Z",
            "2026-05-13T23:10:00Z", "2026-05-13T23:30:00Z", "2026-05-13T23:50:00Z",
            "2026-05-14T22:10:00Z",
        ]))
    }

    @Test func monthAndDayNamesAreCaseInsensitive() throws {
        #expect(try fires("0 0 1 FEB-mar *", after: "2026-05-13T00:00:00Z", count: 3) == dates([
            "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z", "2028-02-01T00:00:00Z",
        ]))
        #expect(try fires("0 9 * * MON-wed", after: "2026-05-13T10:00:00Z", count: 3) == dates([
            "2026-05-18T09:00:00Z", "2026-05-19T09:00:00Z", "2026-05-20T09:00:00Z",
        ]))
        #expect(try fires("0 9 * jan,Jul sat", after: "2026-05-13T10:00:00Z", count: 2)
            == fires("0 9 * 1,7 6", after: "2026-05-13T10:00:00Z", count: 2))
    }

    @Test(arguments: ["0", "7", "sun", "SUN"])
    func sundayIsZeroSevenOrSun(_ field: String) throws {
        #expect(try fires("0 0 * * \(field)", after: "2026-05-13T00:00:00Z", count: 2) == dates([
            "2026-05-17T00:00:00Z", "2026-05-24T00:00:00Z",
        ]))
    }

    @Test func aRangeEndingInSevenIncludesSunday() throws {
        #expect(try fires("0 0 * * 5-7", after: "2026-05-13T00:00:00Z", count: 4) == dates([
            "2026-05-15T00:00:00Z", "2026-05-16T00:00:00Z", "2026-05-17T00:00:00Z", "2026-05-22T00:00:00Z",
        ]))
    }

    @Test func restrictedDayOfMonthAndDayOfWeekMatchEither() throws {
        #expect(try fires("0 0 13 * fri", after: "2026-05-13T00:00:00Z", count: 7) == dates([
            "2026-05-15T00:00:00Z", "2026-05-22T00:00:00Z", "2026-05-29T00:00:00Z",
            "2026-06-05T00:00:00Z", "2026-06-12T00:00:00Z", "2026-06-13T00:00:00Z", "2026-06-19T00:00:00Z",
        ]))
    }

    @Test func aStarDayFieldLeavesTheOtherToRestrict() throws {
        #expect(try fires("0 0 13 * *", after: "2026-05-13T00:00:00Z", count: 2) == dates([
            "2026-06-13T00:00:00Z", "2026-07-13T00:00:00Z",
        ]))
        #expect(try fires("0 0 * * fri", after: "2026-05-13T00:00:00Z", count: 2) == dates([
            "2026-05-15T00:00:00Z", "2026-05-22T00:00:00Z",
        ]))
    }

    /// Vixie cron counts a day field that starts with `*` as unrestricted, so `*/2` and `fri` must both match.
    @Test func aSteppedStarDayFieldCombinesWithAnd() throws {
        #expect(try fires("0 0 */2 * fri", after: "2026-05-13T00:00:00Z", count: 4) == dates([
            "2026-05-15T00:00:00Z", "2026-05-29T00:00:00Z", "2026-06-05T00:00:00Z", "2026-06-19T00:00:00Z",
        ]))
    }

    @Test func nextCrossesMonthAndYearEnds() throws {
        #expect(try fires("59 23 31 * *", after: "2026-05-13T00:00:00Z", count: 3) == dates([
            "2026-05-31T23:59:00Z", "2026-07-31T23:59:00Z", "2026-08-31T23:59:00Z",
        ]))
        #expect(try fires("* * * * *", after: "2026-12-31T23:59:30Z") == dates(["2027-01-01T00:00:00Z"]))
        #expect(try fires("30 23 31 12 *", after: "2026-12-31T23:30:00Z") == dates(["2027-12-31T23:30:00Z"]))
    }

    @Test func february29WaitsForALeapYear() throws {
        #expect(try fires("0 0 29 2 *", after: "2026-01-01T00:00:00Z", count: 2) == dates([
            "2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z",
        ]))
    }

    @Test func nothingWithinFiveYearsIsNil() throws {
        let zone = try #require(TimeZone(identifier: "UTC"))
        #expect(try CronExpression("0 0 30 2 *").next(after: date("2026-01-01T00:00:00Z"), in: zone) == nil)
        #expect(try CronExpression("0 0 31 4,6,9,11 *").next(after: date("2026-01-01T00:00:00Z"), in: zone) == nil)
        #expect(try CronExpression("0 0 29 2 *").next(after: date("2096-03-01T00:00:00Z"), in: zone) == nil)
    }

    @Test func evaluatesInTheGivenTimeZone() throws {
        #expect(try fires("0 9 * * *", after: "2026-01-15T12:00:00Z", in: "Europe/Berlin") == dates(["2026-01-16T08:00:00Z"]))
        #expect(try fires("0 9 * * *", after: "2026-07-15T12:00:00Z", in: "Europe/Berlin") == dates(["2026-07-16T07:00:00Z"]))
        #expect(try fires("0 0 * * *", after: "2026-05-13T16:00:00Z", in: "Asia/Tokyo") == dates(["2026-05-14T15:00:00Z"]))
    }

    @Test func dayFieldsUseTheLocalDate() throws {
        #expect(try fires("0 20 * * fri", after: "2026-05-13T00:00:00Z", in: "America/New_York") == dates(["2026-05-16T00:00:00Z"]))
        #expect(try fires("0 20 15 * *", after: "2026-05-13T00:00:00Z", in: "America/New_York") == dates(["2026-05-16T00:00:00Z"]))
    }

    @Test func aTimeInTheSpringForwardGapIsSkippedThatDay() throws {
        #expect(try fires("30 2 * * *", after: "2026-03-28T00:00:00Z", count: 2, in: "Europe/Berlin") == dates([
            "2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00",
        ]))
        #expect(try fires("* * * * *", after: "2026-03-29T01:59:00+01:00", in: "Europe/Berlin") == dates(["2026-03-29T03:00:00+02:00"]))
    }

    @Test func aRepeatedTimeAtFallBackFiresOnce() throws {
        #expect(try fires("30 2 * * *", after: "2026-10-24T12:00:00Z", count: 2, in: "Europe/Berlin") == dates([
            "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00",
        ]))
        #expect(try fires("30 2 * * *", after: "2026-10-25T02:10:00+01:00", in: "Europe/Berlin") == dates(["2026-10-26T02:30:00+01:00"]))
    }

    @Test func nextIsStrictlyAfterAndOnAWholeMinute() throws {
        #expect(try fires("0 9 * * *", after: "2026-05-13T09:00:00Z") == dates(["2026-05-14T09:00:00Z"]))
        let zone = try #require(TimeZone(identifier: "UTC"))
        let cron = try CronExpression("0 9 * * *")
        let nine = try date("2026-05-13T09:00:00Z")
        #expect(cron.next(after: nine.addingTimeInterval(-0.5), in: zone) == nine)
        #expect(cron.next(after: nine.addingTimeInterval(0.5), in: zone) == nine.addingTimeInterval(86_400))
        let next = try #require(try CronExpression("* * * * *").next(after: nine.addingTimeInterval(12.75), in: zone))
        #expect(next == nine.addingTimeInterval(60))
        #expect(next.timeIntervalSince1970.truncatingRemainder(dividingBy: 60) == 0)
    }

    @Test(arguments: [
        ("", "cron expression is empty: expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily"),
        ("0 0 * *", "cron expression '0 0 * *' has 4 fields: expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily"),
        ("0 0 * * * *", "cron expression '0 0 * * * *' has 6 fields: expected 5 fields (minute hour day-of-month month day-of-week) or a macro like @daily"),
        ("60 * * * *", "cron field 'minute' value '60' is out of range 0-59 in '60 * * * *'"),
        ("0 25 * * *", "cron field 'hour' value '25' is out of range 0-23 in '0 25 * * *'"),
        ("0 0 0 * *", "cron field 'day-of-month' value '0' is out of range 1-31 in '0 0 0 * *'"),
        ("0 0 * 13 *", "cron field 'month' value '13' is out of range 1-12 in '0 0 * 13 *'"),
        ("0 0 * * 8", "cron field 'day-of-week' value '8' is out of range 0-7 in '0 0 * * 8'"),
        ("99999999999999999999 * * * *", "cron field 'minute' value '99999999999999999999' is out of range 0-59 in '99999999999999999999 * * * *'"),
        ("1,,2 * * * *", "cron field 'minute' has an empty list item in '1,,2 * * * *': remove the extra comma"),
        ("0 1, * * *", "cron field 'hour' has an empty list item in '0 1, * * *': remove the extra comma"),
        ("5-1 * * * *", "cron field 'minute' range '5-1' is reversed in '5-1 * * * *': expected the smaller value first; to wrap around write '5-59,0-1'"),
        ("0 0 * * fri-mon", "cron field 'day-of-week' range 'fri-mon' is reversed in '0 0 * * fri-mon': expected the smaller value first; to wrap around write '5-7,0-1'"),
        ("*/0 * * * *", "cron field 'minute' step '0' is zero in '*/0 * * * *': expected a step of 1 or more"),
        ("*/x * * * *", "cron field 'minute' step 'x' is not a number in '*/x * * * *'"),
        ("1-2-3 * * * *", "cron field 'minute' item '1-2-3' is malformed in '1-2-3 * * * *': expected *, a number, a range like 1-5, or a step like */15 or 1-5/2"),
        ("*/ * * * *", "cron field 'minute' item '*/' is malformed in '*/ * * * *': expected *, a number, a range like 1-5, or a step like */15 or 1-5/2"),
        ("0 0 -5 * *", "cron field 'day-of-month' item '-5' is malformed in '0 0 -5 * *': expected *, a number, a range like 1-5, or a step like */15 or 1-5/2"),
        ("1/2/3 * * * *", "cron field 'minute' item '1/2/3' is malformed in '1/2/3 * * * *': expected *, a number, a range like 1-5, or a step like */15 or 1-5/2"),
        ("0 mon * * *", "cron field 'hour' value 'mon' is not a number in '0 mon * * *'"),
        ("0 0 * * 1.5", "cron field 'day-of-week' value '1.5' is not a number or a day name (sun-sat) in '0 0 * * 1.5'"),
        ("0 0 * foo *", "cron field 'month' value 'foo' is not a number or a month name (jan-dec) in '0 0 * foo *'"),
        ("0 0 * * tues", "cron field 'day-of-week' value 'tues' is not a number or a day name (sun-sat) in '0 0 * * tues' (did you mean 'tue'?)"),
        ("@reboot", "cron macro '@reboot' is not supported: a schedule needs a time; use 5 fields or @hourly, @daily, @weekly, @monthly or @yearly"),
        ("@fortnightly", "unknown cron macro '@fortnightly': use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"),
        ("@dayly", "unknown cron macro '@dayly' (did you mean '@daily'?): use @hourly, @daily, @midnight, @weekly, @monthly, @yearly or @annually"),
    ])
    func invalidExpressionsAreUsageErrors(_ text: String, _ message: String) {
        let error = #expect(throws: FaultlineError.self) { try CronExpression(text) }
        #expect(error?.code == .usage)
        #expect(error?.message == message)
    }
}
