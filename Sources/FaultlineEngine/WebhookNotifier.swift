import FaultlineCore
import Foundation

/// The scenario's webhooks (`spec.notify`): a run's start, abort, failed reverts and end, one JSON POST per event
/// with a Slack-compatible `text` field, carried by an `EventCourier` so a hook never holds up the run.
public enum WebhookNotifier {
    /// One message, as a hook receives it.
    struct Message: Sendable, Encodable {
        var text: String
        var event: String
        var run: String
        var scenario: String
        var host: String
        var at: String
        var message: String
        var fault: String?
        var probe: String?
        /// The scenario's runbook, on abort, failed-revert and end messages.
        var runbook: String?
    }

    /// The scenario's hooks, then one for every event at each of `urls` (`--notify`) the scenario does not name already.
    public static func hooks(_ scenario: Scenario, adding urls: [String]) -> [NotifyHook] {
        let own = scenario.spec.notify ?? []
        return own + urls.filter { url in !own.contains { $0.url == url } }.map { NotifyHook(url: $0) }
    }

    /// A courier with one lane per hook, or nil without hooks; each POST gives up after `timeout`.
    public static func courier(hooks: [NotifyHook], run: String, scenario: String, runbook: String? = nil, log: EventLog,
                               timeout: Duration = .seconds(5)) -> EventCourier? {
        guard !hooks.isEmpty else { return nil }
        let host = ProcessInfo.processInfo.hostName
        let lanes = hooks.map { hook in
            EventCourier.Lane(name: "notify: '\(hook.url)'", accepts: { event in kind(of: event).map(hook.events.contains) ?? false }) { event, date in
                guard let kind = kind(of: event) else { return }
                let subject = event.fault.map { " [\($0)]" } ?? event.probe.map { " (\($0))" } ?? ""
                let book = kind == .start ? nil : runbook
                let message = Message(text: "faultline · \(scenario) · run \(run) on \(host)\(subject): \(event.message)" + (book.map { " · runbook: \($0)" } ?? ""),
                                      event: kind.rawValue, run: run, scenario: scenario, host: host,
                                      at: ISO8601DateFormatter.withFractions.string(from: date),
                                      message: event.message, fault: event.fault, probe: event.probe, runbook: book)
                await post(message, to: hook, timeout: timeout, log: log)
            }
        }
        return EventCourier(lanes: lanes, log: log)
    }

    /// The event kinds the hooks can ask for.
    static func kind(of event: RunEvent) -> NotifyHook.Event? {
        switch event {
        case .started: .start
        case .aborted: .abort
        case .revertFailed: .revertFailed
        case .ended: .end
        default: nil
        }
    }

    static func post(_ message: Message, to hook: NotifyHook, timeout: Duration, log: EventLog) async {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let body = try? encoder.encode(message) else { return }
        do {
            let status = try await OutboundHTTP.exchange(.POST, hook.url, json: body, timeout: timeout).status
            if !(200..<300).contains(status) {
                log.log(.note(.warning, .notify, "notify: '\(hook.url)' answered \(status) to the \(message.event) message"))
            }
        } catch {
            log.log(.note(.warning, .notify, "notify: the \(message.event) message to '\(hook.url)' failed: \(error)"))
        }
    }
}
