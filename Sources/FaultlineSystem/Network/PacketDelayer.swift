import CFaultlineShims
import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The userspace NFQUEUE engine: takes the packets an iptables NFQUEUE rule sends to its queue, drops
/// the lost ones at once, and lets each other one go when its delay is over (a duplicated one twice). Packets made on this host
/// are copied, the original dropped at once (a held packet would hold its socket's send buffer, and
/// TCP's small-queue limit would throttle the sender to a few packets per delay) and the copy sent
/// again when its delay is over; forwarded packets are held in the kernel until their verdict. One thread.
/// It stops on SIGTERM/SIGINT/SIGHUP/SIGQUIT or when its parent process ends, letting every packet still held
/// go at once; if it is killed, the kernel lets traffic pass (`--queue-bypass`).
public final class PacketDelayer {
    /// How the delayer is set up.
    public struct Settings: Sendable {
        public var queue: UInt16
        public var model: DelayModel
        /// Packets held at most; beyond it packets pass undelayed (fail-open) and a warning says so.
        public var limit: Int = Planner.delayerLimit
        public var seed: UInt64?
        /// The process whose end stops the delayer (its parent); nil to not watch one.
        public var parent: Int32?
        /// Where copies of the packets made on this host go out again, and the mark that lets them pass the
        /// fault's chain; nil holds every packet in the kernel instead.
        public var reinject: (interface: String, mark: UInt32)?

        public init(queue: UInt16, model: DelayModel, limit: Int = Planner.delayerLimit, seed: UInt64? = nil, parent: Int32? = nil,
                    reinject: (interface: String, mark: UInt32)? = nil) {
            self.queue = queue
            self.model = model
            self.limit = limit
            self.seed = seed
            self.parent = parent
            self.reinject = reinject
        }
    }

    /// What the delayer did.
    public struct Statistics: Sendable, Hashable {
        public var packets = 0
        public var delayed = 0
        public var dropped = 0
        /// Packets that passed undelayed because the queue was full.
        public var passedFull = 0
        /// Packets whose queue message the kernel could not deliver (socket buffer overrun): let through.
        public var missed = 0
        /// How late verdicts were after their deadline: median and maximum, in microseconds.
        public var lateMedianMicroseconds = 0
        public var lateMaxMicroseconds = 0
        /// Packets sent twice (the second time as a copy).
        public var duplicated = 0
        /// Packets with one bit flipped, and packets sent at once ahead of the delayed ones (reorder).
        public var corrupted = 0
        public var reordered = 0
        /// Copies sent (of delayed packets made on this host, and duplicates), and copies that could not be sent.
        public var resent = 0
        public var resendFailed = 0

        public var line: String {
            "packets=\(packets) delayed=\(delayed) dropped=\(dropped) duplicated=\(duplicated) corrupted=\(corrupted) reordered=\(reordered) resent=\(resent) resend-failed=\(resendFailed) passed-full=\(passedFull) missed=\(missed) late-median-us=\(lateMedianMicroseconds) late-max-us=\(lateMaxMicroseconds)"
        }
    }

    /// One held packet: when it may go, its id (the arrival order, which ties keep), and its copy
    /// when the original was dropped and the copy goes out instead.
    struct Held {
        var deadline: Int64
        var id: UInt32
        var copy: [UInt8]? = nil
        /// For a packet held in the kernel: the corrupted bytes that replace it when it goes.
        var replacement: [UInt8]? = nil
    }

    let settings: Settings
    let output: (String) -> Void
    private var held = MinHeap()
    private var statistics = Statistics()
    private var lateness = [UInt32](repeating: 0, count: 10_001)  // 10 µs buckets up to 100 ms, then one overflow bucket
    private var lastID: UInt32 = 0
    private var lastFullWarning: Int64?
    private var lastResendWarning: Int64?
    private var lastOverrunWarning: Int64?
    private var reinjector: PacketReinjector?

    public init(settings: Settings, output: @escaping (String) -> Void) {
        self.settings = settings
        self.output = output
        reinjector = settings.reinject.map { PacketReinjector(interface: $0.interface, mark: $0.mark) }
    }

    /// Binds the queue, says `ready`, and runs until told to stop; returns what it did.
    public func run() throws(FaultlineError) -> Statistics {
        let signals = faultline_termination_eventfd()
        guard signals >= 0 else { throw FaultlineError(.commandFailed, "cannot watch for signals: \(String(cString: strerror(errno)))") }
        var parentFD: Int32 = -1
        if let parent = settings.parent {
            parentFD = faultline_pidfd_open(parent)
            guard parentFD >= 0 else { throw FaultlineError(.commandFailed, "the parent process \(parent) is gone") }
        }
        defer { if parentFD >= 0 { close(parentFD) } }
        _ = faultline_set_timer_slack(1_000)
        if let problem = reinjector?.prepare() {
            output("warning: \(problem); packets made here are held in the kernel instead, which slows their senders (TCP to a few packets per delay)"
                + (settings.model.duplicate > 0 ? ", and no packet can be duplicated" : ""))
            reinjector = nil
        }
        // The packets' bytes come up when copies are sent again, or when bits are flipped in them.
        let socket = try NFQueueSocket(queue: settings.queue, maxLength: UInt32(settings.limit),
                                       copyPackets: reinjector != nil || settings.model.corrupt > 0)
        output("ready queue=\(settings.queue)")
        var model = settings.model
        var random = FastRandom(seed: settings.seed)
        var polls = [
            pollfd(fd: socket.fileDescriptor, events: Int16(POLLIN), revents: 0),
            pollfd(fd: signals, events: Int16(POLLIN), revents: 0),
            pollfd(fd: parentFD, events: Int16(POLLIN), revents: 0),
        ]
        var stopping = false
        while !stopping {
            let timeout = held.first.map { max(0, $0.deadline - Self.now()) } ?? -1
            let ready = faultline_poll_nanoseconds(&polls, nfds_t(polls.count), timeout)
            if ready < 0, errno != EINTR { throw FaultlineError(.commandFailed, "poll failed: \(String(cString: strerror(errno)))") }
            // a signal, or the parent process has ended
            if polls[1].revents != 0 || polls[2].revents != 0 { stopping = true }
            if polls[0].revents & Int16(POLLIN) != 0 {
                let now = Self.now()
                let (_, overrun) = try socket.receive(limit: 512) { packet in
                    admit(packet, now: now, socket: socket, model: &model, random: &random)
                }
                if overrun, lastOverrunWarning.map({ now - $0 > 5_000_000_000 }) ?? true {
                    lastOverrunWarning = now
                    output("warning: the kernel could not hand every packet to the delayer (its socket buffer was full); those packets pass undelayed")
                }
            }
            try release(upTo: Self.now(), socket: socket)
            try socket.flush()
        }
        // Let everything still held go now.
        while let entry = held.popFirst() { try letGo(entry, socket: socket) }
        try socket.flush()
        finishLateness()
        output("stats: \(statistics.line)")
        return statistics
    }

    /// Decides what happens to `packet`, arrived at `now`.
    private func admit(_ packet: NFQueueSocket.Packet, now: Int64, socket: NFQueueSocket, model: inout DelayModel, random: inout FastRandom) {
        let id = packet.id
        statistics.packets += 1
        // Ids count up by one per queued packet: a gap means messages the socket lost; those packets
        // wait in the kernel for a verdict that would never come, so let them through.
        if lastID != 0, id > lastID &+ 1, id &- lastID < 1 << 20 {
            var missing = lastID &+ 1
            while missing != id {
                try? socket.verdict(missing, accept: true)
                statistics.missed += 1
                missing &+= 1
            }
        }
        lastID = id
        if model.lose(using: &random) {
            statistics.dropped += 1
            try? socket.verdict(id, accept: false)
            return
        }
        var delay = model.nextDelay(using: &random)
        // A duplicate is a copy sent at the same time as the packet; it needs the packet's bytes.
        if model.duplicates(using: &random), reinjector != nil, !packet.bytes.isEmpty, held.count < settings.limit {
            statistics.duplicated += 1
            held.push(Held(deadline: now + delay, id: id, copy: Array(packet.bytes)))
        }
        // A corrupted packet goes on with one bit flipped (after the duplicate was copied, as netem does).
        var corrupted: [UInt8]?
        if model.corrupts(using: &random), !packet.bytes.isEmpty {
            var bytes = Array(packet.bytes)
            if DelayModel.flipOneBit(&bytes, using: &random) {
                corrupted = bytes
                statistics.corrupted += 1
            }
        }
        // Reorder: the chosen packets go at once, ahead of the delayed ones.
        if model.sendsAtOnce(using: &random) {
            delay = 0
            statistics.reordered += 1
        }
        func acceptNow() {
            if let corrupted { try? socket.accept(id, replacingWith: corrupted) } else { try? socket.verdict(id, accept: true) }
        }
        if delay == 0 {
            acceptNow()
            return
        }
        if held.count >= settings.limit {
            statistics.passedFull += 1
            acceptNow()
            if lastFullWarning.map({ now - $0 > 5_000_000_000 }) ?? true {
                lastFullWarning = now
                output("warning: the delay queue is full (\(settings.limit) packets held): packets beyond it pass undelayed until it drains (\(statistics.passedFull) so far)")
            }
            return
        }
        statistics.delayed += 1
        // A marked packet may be routed by its mark, which the copy would not carry: hold those.
        if reinjector != nil, packet.local, packet.mark == 0, !packet.bytes.isEmpty {
            held.push(Held(deadline: now + delay, id: id, copy: corrupted ?? Array(packet.bytes)))
            try? socket.verdict(id, accept: false)
        } else {
            held.push(Held(deadline: now + delay, id: id, replacement: corrupted))
        }
    }

    /// Sends a held packet on: its verdict (with its corrupted bytes, if any), or its copy.
    private func letGo(_ entry: Held, socket: NFQueueSocket) throws(FaultlineError) {
        guard let copy = entry.copy, let reinjector else {
            if let replacement = entry.replacement {
                try socket.accept(entry.id, replacingWith: replacement)
            } else {
                try socket.verdict(entry.id, accept: true)
            }
            return
        }
        if reinjector.send(copy) {
            statistics.resent += 1
            return
        }
        statistics.resendFailed += 1
        let now = Self.now()
        if lastResendWarning.map({ now - $0 > 5_000_000_000 }) ?? true {
            lastResendWarning = now
            output("warning: a delayed packet could not be sent again (\(String(cString: strerror(errno)))); \(statistics.resendFailed) lost so far")
        }
    }

    /// Lets go every packet whose deadline has passed.
    private func release(upTo now: Int64, socket: NFQueueSocket) throws(FaultlineError) {
        while let first = held.first, first.deadline <= now {
            _ = held.popFirst()
            let late = Int((now - first.deadline) / 10_000)
            lateness[min(late, lateness.count - 1)] += 1
            statistics.lateMaxMicroseconds = max(statistics.lateMaxMicroseconds, Int((now - first.deadline) / 1_000))
            try letGo(first, socket: socket)
        }
    }

    private func finishLateness() {
        let total = lateness.reduce(0) { $0 + Int($1) }
        guard total > 0 else { return }
        var seen = 0
        for (bucket, count) in lateness.enumerated() {
            seen += Int(count)
            if seen * 2 >= total {
                statistics.lateMedianMicroseconds = bucket * 10
                return
            }
        }
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}

/// A binary min-heap of held packets by (deadline, id): with a constant delay, arrival order.
struct MinHeap {
    private var items: [PacketDelayer.Held] = []

    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }
    var first: PacketDelayer.Held? { items.first }

    static func less(_ a: PacketDelayer.Held, _ b: PacketDelayer.Held) -> Bool {
        a.deadline != b.deadline ? a.deadline < b.deadline : a.id &- b.id > 1 << 31
    }

    mutating func push(_ item: PacketDelayer.Held) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popFirst() -> PacketDelayer.Held? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1, right = left + 1
                var smallest = parent
                if left < items.count, Self.less(items[left], items[smallest]) { smallest = left }
                if right < items.count, Self.less(items[right], items[smallest]) { smallest = right }
                if smallest == parent { break }
                items.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return top
    }
}
