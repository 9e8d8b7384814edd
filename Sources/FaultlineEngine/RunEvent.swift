import Foundation

/// Something that happened during a run, for the log (text or JSON lines on stderr).
public struct RunEvent: Sendable {
    public enum Level: String, Sendable { case debug, info, warning, error }

    public var level: Level
    public var event: String
    public var message: String
    public var fault: String?
    public var probe: String?
    /// How long the step took, in seconds, where it is measured (reverts).
    public var duration: Double?

    public init(_ level: Level, _ event: String, _ message: String, fault: String? = nil, probe: String? = nil, duration: Double? = nil) {
        self.level = level
        self.event = event
        self.message = message
        self.fault = fault
        self.probe = probe
        self.duration = duration
    }
}

/// Writes run events to stderr, as text lines or as one JSON object per line (SPEC §4).
public struct EventLog: Sendable {
    public enum Format: String, Sendable, CaseIterable { case text, json }

    let format: Format
    let run: String
    let scenario: String
    let minimum: RunEvent.Level
    let write: @Sendable (String) -> Void
    let observe: (@Sendable (RunEvent, Date) -> Void)?

    /// `observe` sees every event, whatever the level (the agent keeps them for its event stream and metrics).
    public init(format: Format, run: String, scenario: String, minimum: RunEvent.Level = .info,
                observe: (@Sendable (RunEvent, Date) -> Void)? = nil, write: @escaping @Sendable (String) -> Void) {
        self.format = format
        self.run = run
        self.scenario = scenario
        self.minimum = minimum
        self.observe = observe
        self.write = write
    }

    static let order: [RunEvent.Level] = [.debug, .info, .warning, .error]

    /// The same log, with `extra` seeing every event too (after the observer it had).
    public func observed(by extra: @escaping @Sendable (RunEvent, Date) -> Void) -> EventLog {
        let first = observe
        return EventLog(format: format, run: run, scenario: scenario, minimum: minimum,
                        observe: { event, date in first?(event, date); extra(event, date) }, write: write)
    }

    public func log(_ event: RunEvent) {
        let now = Date()
        observe?(event, now)
        guard Self.order.firstIndex(of: event.level)! >= Self.order.firstIndex(of: minimum)! else { return }
        switch format {
        case .json:
            var object: [String: String] = [
                "ts": ISO8601DateFormatter.withFractions.string(from: now), "level": event.level.rawValue, "msg": event.message,
                "run": run, "scenario": scenario, "event": event.event,
            ]
            object["fault"] = event.fault
            object["probe"] = event.probe
            if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) {
                write(String(decoding: data, as: UTF8.self) + "\n")
            }
        case .text:
            let time = ISO8601DateFormatter.timeOnly.string(from: now)
            let subject = event.fault.map { "[\($0)] " } ?? event.probe.map { "(\($0)) " } ?? ""
            write("\(time) \(event.level == .info ? "" : event.level.rawValue.uppercased() + " ")\(subject)\(event.message)\n")
        }
    }
}

extension ISO8601DateFormatter {
    // nonisolated(unsafe): configured once, then only used to format, which Foundation allows from any thread.
    nonisolated(unsafe) static let withFractions: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }()

    nonisolated(unsafe) static let timeOnly: ISO8601DateFormatter = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withTime, .withColonSeparatorInTime]
        return formatter
    }()
}
