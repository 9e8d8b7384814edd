import AsyncHTTPClient
import FaultlineCore
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Tells the scenario's webhooks (`spec.notify`) about a run's start, abort, failed reverts and end: one JSON POST
/// per event, with a Slack-compatible `text` field.
///
/// It never holds up the run: events are queued as they are logged and sent by `deliver()`, which runs beside the
/// run, in order for each hook, each POST bounded by `timeout`. When the run is over, what is still queued gets at
/// most `drain`; a hook that hangs or fails costs a warning, never a revert.
public final class WebhookNotifier: Sendable {
    /// One message, as a hook receives it.
    struct Message: Sendable, Codable, Equatable {
        var text: String
        var event: String
        var run: String
        var scenario: String
        var host: String
        var at: String
        var message: String
        var fault: String?
        var probe: String?
    }

    let hooks: [NotifyHook]
    let run: String
    let scenario: String
    let host: String
    let timeout: Duration
    let drain: Duration
    let log: EventLog
    private let queues: [(stream: AsyncStream<Message>, continuation: AsyncStream<Message>.Continuation)]
    private let closed: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    /// Messages queued for each hook and not yet handed to it.
    private let pending: Mutex<[Int]>

    /// `log` receives the notifier's own warnings (a hook that failed or did not answer).
    public init(hooks: [NotifyHook], run: String, scenario: String, log: EventLog,
                timeout: Duration = .seconds(5), drain: Duration = .seconds(5)) {
        self.hooks = hooks
        self.run = run
        self.scenario = scenario
        self.host = ProcessInfo.processInfo.hostName
        self.timeout = timeout
        self.drain = drain
        self.log = log
        queues = hooks.map { _ in AsyncStream.makeStream(of: Message.self, bufferingPolicy: .bufferingNewest(1_000)) }
        closed = AsyncStream.makeStream(of: Void.self)
        pending = Mutex(Array(repeating: 0, count: hooks.count))
    }

    /// Runs `body` with a log that feeds the hooks, delivering beside it; returns once `body` has and the queue is
    /// sent (or `drain` has passed). Without hooks it only runs `body`.
    public static func around<T: Sendable>(_ hooks: [NotifyHook], run: String, scenario: String, log: EventLog,
                                           _ body: @Sendable (EventLog) async -> T) async -> T {
        guard !hooks.isEmpty else { return await body(log) }
        let notifier = WebhookNotifier(hooks: hooks, run: run, scenario: scenario, log: log)
        return await withTaskGroup(of: Void.self) { group in
            group.addTask { await notifier.deliver() }
            let result = await body(log.observed(by: notifier.observe))
            notifier.close()
            await group.waitForAll()
            return result
        }
    }

    /// The event kinds the hooks can ask for, by the log's event names.
    static func kind(of event: RunEvent) -> NotifyHook.Event? {
        switch event.event {
        case "start": .start
        case "abort": .abort
        case "revert-failed": .revertFailed
        case "end": .end
        default: nil
        }
    }

    /// Queues the event for each hook that asked for it; never waits.
    public func observe(_ event: RunEvent, _ date: Date) {
        guard let kind = Self.kind(of: event) else { return }
        let subject = event.fault.map { " [\($0)]" } ?? event.probe.map { " (\($0))" } ?? ""
        let message = Message(text: "faultline · \(scenario) · run \(run) on \(host)\(subject): \(event.message)", event: kind.rawValue,
                              run: run, scenario: scenario, host: host, at: ISO8601DateFormatter.withFractions.string(from: date),
                              message: event.message, fault: event.fault, probe: event.probe)
        for (index, (hook, queue)) in zip(hooks, queues).enumerated() where hook.events.contains(kind) {
            pending.withLock { $0[index] += 1 }
            queue.continuation.yield(message)
        }
    }

    /// No more events: what is queued is sent, for at most `drain`.
    public func close() {
        for queue in queues { queue.continuation.finish() }
        closed.continuation.yield()
        closed.continuation.finish()
    }

    /// Sends the queued messages, each hook in order, until `close()` and the drain are over.
    public func deliver() async {
        await withTaskGroup(of: Bool.self) { group in
            for (index, (hook, queue)) in zip(hooks, queues).enumerated() {
                group.addTask {
                    for await message in queue.stream {
                        await self.post(message, to: hook)
                        self.pending.withLock { $0[index] -= 1 }
                    }
                    let unsent = self.pending.withLock { $0[index] }
                    if unsent > 0 {
                        self.log.log(RunEvent(.warning, "notify", "notify: \(unsent) message(s) to '\(hook.url)' not sent: the run is over and the hook did not take them within \(self.drain)"))
                    }
                    return false
                }
            }
            for await _ in closed.stream {}
            let drain = drain
            group.addTask {
                try? await Task.sleep(for: drain)
                return true
            }
            var finished = 0
            while let timer = await group.next() {
                if timer { group.cancelAll(); continue }
                finished += 1
                if finished == hooks.count { group.cancelAll() }
            }
        }
    }

    func post(_ message: Message, to hook: NotifyHook) async {
        var request = HTTPClientRequest(url: hook.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "faultline")
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let body = try? encoder.encode(message) else { return }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
            _ = try? await response.body.collect(upTo: 64 << 10)
            if !(200..<300).contains(response.status.code) {
                log.log(RunEvent(.warning, "notify", "notify: '\(hook.url)' answered \(response.status.code) to the \(message.event) message"))
            }
        } catch {
            log.log(RunEvent(.warning, "notify", "notify: the \(message.event) message to '\(hook.url)' failed: \(error)"))
        }
    }
}
