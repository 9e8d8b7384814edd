import FaultlineCore
import Foundation
import NIOHTTP1
import Synchronization

/// Each fault window and each abort as a Grafana annotation (HTTP API `/api/annotations`), tagged `faultline`, the
/// scenario and the fault (or `abort`), so game days show on every dashboard next to the service's own signals.
///
/// A fault's annotation is made when it is injected and given its end when it is reverted; an abort is a point.
/// Carried by an `EventCourier`: Grafana slow or down costs a warning, never a revert.
public enum GrafanaAnnotator {
    /// Where Grafana is and the service-account token to use (`Authorization: Bearer`).
    public struct Settings: Sendable, Hashable {
        public var url: String
        public var token: String?

        public init(url: String, token: String?) {
            self.url = url
            self.token = token
        }
    }

    /// What the annotator knows of one fault's annotation.
    struct Window {
        var id: Int?
        var start: Date
        var text: String
    }

    /// A courier with one lane (annotations are made and ended in order), or nil without settings.
    public static func courier(_ settings: Settings?, run: String, scenario: String, log: EventLog,
                               timeout: Duration = .seconds(5)) -> EventCourier? {
        guard let settings else { return nil }
        var base = settings.url
        while base.hasSuffix("/") { base.removeLast() }
        let endpoint = base + "/api/annotations"
        let headers = settings.token.map { [("Authorization", "Bearer \($0)")] } ?? []
        let windows = Mutex<[String: Window]>([:])

        let lane = EventCourier.Lane(name: "grafana: '\(base)'", accepts: { event in
            switch event {
            case .injected, .reverted, .revertFailed, .aborted: true
            default: false
            }
        }) { event, date in
            let tags = ["faultline", scenario]
            switch event {
            case .injected(let fault, _, _):
                guard windows.withLock({ $0[fault] }) == nil else { return }  // a repeat
                let text = "faultline \(scenario) · run \(run) · \(fault): \(event.message)"
                windows.withLock { $0[fault] = Window(id: nil, start: date, text: text) }
                let id = await Self.send(headers: headers, timeout: timeout, log: log, .POST, endpoint, ["time": Self.milliseconds(date), "tags": tags + [fault], "text": text],
                                    what: "the annotation of fault \(fault)")
                windows.withLock { $0[fault]?.id = id }
            case .reverted(let fault, _, _), .revertFailed(let fault, _, _):
                guard let window = windows.withLock({ $0[fault] }) else { return }
                let outcome = if case .revertFailed = event { event.message } else { "reverted" }
                let text = window.text + " — " + outcome
                if let id = window.id, id > 0 {
                    _ = await Self.send(headers: headers, timeout: timeout, log: log, .PATCH, "\(endpoint)/\(id)", ["timeEnd": Self.milliseconds(date), "text": text], what: "the end of fault \(fault)")
                } else {
                    _ = await Self.send(headers: headers, timeout: timeout, log: log, .POST, endpoint, ["time": Self.milliseconds(window.start), "timeEnd": Self.milliseconds(date), "tags": tags + [fault],
                                                     "text": text], what: "the window of fault \(fault)")
                }
            case .aborted:
                _ = await Self.send(headers: headers, timeout: timeout, log: log, .POST, endpoint, ["time": Self.milliseconds(date), "tags": tags + ["abort"],
                                                 "text": "faultline \(scenario) · run \(run) · \(event.message)"], what: "the abort")
            default: break
            }
        }
        return EventCourier(lanes: [lane], log: log)
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    /// One annotation request; the new annotation's id (0 when the answer names none), or nil after a warning.
    static func send(headers: [(String, String)], timeout: Duration, log: EventLog,
                     _ method: HTTPMethod, _ url: String, _ object: [String: Any], what: String) async -> Int? {
        guard let body = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return nil }
        do {
            let (status, answer) = try await OutboundHTTP.exchange(method, url, json: body, headers: headers, timeout: timeout)
            guard (200..<300).contains(status) else {
                log.log(.note(.warning, .notify, "grafana: '\(url)' answered \(status) to \(what)"))
                return nil
            }
            return (try? JSONSerialization.jsonObject(with: answer) as? [String: Any])?["id"] as? Int ?? 0
        } catch {
            log.log(.note(.warning, .notify, "grafana: \(what) failed: \(error)"))
            return nil
        }
    }
}
