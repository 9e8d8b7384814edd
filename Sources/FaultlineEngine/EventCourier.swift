import FaultlineCore
import Foundation
import Synchronization

/// Carries a run's events to outside services (webhooks, Grafana) beside the run, so that none of them can hold it up.
///
/// Each lane is a queue with one sender: events it accepts are queued as they are logged (never waiting) and sent in
/// order by `deliver()`, which runs beside the run. When the run is over (`close()`), what is still queued gets at
/// most `drain`; whatever is left then is dropped with a warning in the run's log.
public final class EventCourier: Sendable {
    /// One destination: which events it takes and how it sends one (bounded by the sender itself).
    public struct Lane: Sendable {
        let name: String
        let accepts: @Sendable (RunEvent) -> Bool
        let send: @Sendable (RunEvent, Date) async -> Void

        /// `name` appears in warnings; `send` should give up on its own after a few seconds.
        public init(name: String, accepts: @escaping @Sendable (RunEvent) -> Bool, send: @escaping @Sendable (RunEvent, Date) async -> Void) {
            self.name = name
            self.accepts = accepts
            self.send = send
        }
    }

    typealias Item = (event: RunEvent, date: Date)

    let lanes: [Lane]
    let drain: Duration
    let log: EventLog
    private let queues: [(stream: AsyncStream<Item>, continuation: AsyncStream<Item>.Continuation)]
    private let closed: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)
    /// Events queued for each lane and not yet handed to its sender.
    private let pending: Mutex<[Int]>

    /// `log` receives the courier's own warnings (what could not be sent in time).
    public init(lanes: [Lane], log: EventLog, drain: Duration = .seconds(5)) {
        self.lanes = lanes
        self.drain = drain
        self.log = log
        queues = lanes.map { _ in AsyncStream.makeStream(of: Item.self, bufferingPolicy: .bufferingNewest(1_000)) }
        closed = AsyncStream.makeStream(of: Void.self)
        pending = Mutex(Array(repeating: 0, count: lanes.count))
    }

    /// Runs `body` with a log that feeds every courier, delivering beside it; returns once `body` has and the
    /// couriers are done (or their drain has passed). Without couriers it only runs `body`.
    public static func around<T: Sendable>(_ couriers: [EventCourier], log: EventLog, _ body: @Sendable (EventLog) async -> T) async -> T {
        guard !couriers.isEmpty else { return await body(log) }
        let observed = couriers.reduce(log) { log, courier in log.observed(by: courier.observe) }
        return await withTaskGroup(of: Void.self) { group in
            for courier in couriers { group.addTask { await courier.deliver() } }
            let result = await body(observed)
            for courier in couriers { courier.close() }
            await group.waitForAll()
            return result
        }
    }

    /// Queues the event for each lane that takes it; never waits.
    public func observe(_ event: RunEvent, _ date: Date) {
        for (index, (lane, queue)) in zip(lanes, queues).enumerated() where lane.accepts(event) {
            pending.withLock { $0[index] += 1 }
            queue.continuation.yield((event, date))
        }
    }

    /// No more events: what is queued is sent, for at most `drain`.
    public func close() {
        for queue in queues { queue.continuation.finish() }
        closed.continuation.yield()
        closed.continuation.finish()
    }

    /// Sends the queued events, each lane in order, until `close()` and the drain are over.
    public func deliver() async {
        await withTaskGroup(of: Bool.self) { group in
            for (index, (lane, queue)) in zip(lanes, queues).enumerated() {
                group.addTask {
                    for await item in queue.stream {
                        await lane.send(item.event, item.date)
                        self.pending.withLock { $0[index] -= 1 }
                    }
                    let unsent = self.pending.withLock { $0[index] }
                    if unsent > 0 {
                        self.log.log(.note(.warning, .notify, "\(lane.name): \(unsent) message(s) not sent: the run is over and it did not take them within \(self.drain)"))
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
                if finished == lanes.count { group.cancelAll() }
            }
        }
    }
}
