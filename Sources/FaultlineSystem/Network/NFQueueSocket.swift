import CFaultlineShims
import FaultlineCore
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A netfilter netlink socket bound to one NFQUEUE queue: packets in (their id and facts, and with
/// `copyPackets` their bytes), verdicts out, many per send. Packets that find the queue full pass
/// (fail-open), and so does all queued traffic when the socket closes and the rule has `--queue-bypass`.
/// Not thread-safe: one thread owns it.
public final class NFQueueSocket {
    public let queue: UInt16
    public let fileDescriptor: Int32
    private var sequence: UInt32 = 0
    private let receiveBuffer: UnsafeMutableRawBufferPointer
    private let sendBuffer: UnsafeMutableRawBufferPointer
    private var sendLength = 0

    static let messagePacket = UInt16(NFNL_SUBSYS_QUEUE << 8) | UInt16(NFQNL_MSG_PACKET.rawValue)
    static let messageVerdict = UInt16(NFNL_SUBSYS_QUEUE << 8) | UInt16(NFQNL_MSG_VERDICT.rawValue)
    static let messageConfig = UInt16(NFNL_SUBSYS_QUEUE << 8) | UInt16(NFQNL_MSG_CONFIG.rawValue)
    static let verdictSize = 32
    /// NF_ACCEPT and NF_DROP of linux/netfilter.h.
    static let accept: UInt32 = 1, drop: UInt32 = 0

    /// One queued packet, valid during the receive callback only.
    public struct Packet {
        public var id: UInt32
        /// Made on this host, not forwarded (no input interface): it may hold a local socket's send buffer.
        public var local: Bool
        public var mark: UInt32
        /// The whole packet (IP header first) when copied and not cut short; else empty.
        public var bytes: UnsafeRawBufferPointer
    }

    /// Opens a socket in this thread's network namespace and binds `queue` with room for `maxLength` packets;
    /// with `copyPackets` each packet's bytes come up too.
    public init(queue: UInt16, maxLength: UInt32, copyPackets: Bool = false) throws(FaultlineError) {
        self.queue = queue
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_NETFILTER)
        guard fd >= 0 else { throw Self.failure("cannot open a netfilter netlink socket", errno) }
        fileDescriptor = fd
        receiveBuffer = .allocate(byteCount: 1 << 18, alignment: 8)
        sendBuffer = .allocate(byteCount: 1 << 16, alignment: 8)
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
        }
        guard bound == 0 else { throw Self.failure("cannot bind the netlink socket", errno) }
        // A big receive buffer rides out bursts; as root the limit of net.core.rmem_max does not apply.
        var size: Int32 = 8 << 20
        if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))

        // bind the queue
        try configure { message in
            message.attribute(UInt16(NFQA_CFG_CMD.rawValue)) { $0.u8(UInt8(NFQNL_CFG_CMD_BIND.rawValue)); $0.u8(0); $0.be16(UInt16(AF_UNSPEC)) }
        }
        // metadata only (the packet stays in the kernel, its id comes up), or the whole packet too
        try configure { message in
            message.attribute(UInt16(NFQA_CFG_PARAMS.rawValue)) {
                $0.be32(copyPackets ? 0xFFFF : 0)
                $0.u8(UInt8(copyPackets ? NFQNL_COPY_PACKET.rawValue : NFQNL_COPY_META.rawValue))
            }
        }
        try configure { message in
            message.attribute(UInt16(NFQA_CFG_QUEUE_MAXLEN.rawValue)) { $0.be32(maxLength) }
        }
        // fail open when full
        let flags = UInt32(NFQA_CFG_F_FAIL_OPEN)
        try configure { message in
            message.attribute(UInt16(NFQA_CFG_FLAGS.rawValue)) { $0.be32(flags) }
            message.attribute(UInt16(NFQA_CFG_MASK.rawValue)) { $0.be32(flags) }
        }
    }

    deinit {
        close(fileDescriptor)
        receiveBuffer.deallocate()
        sendBuffer.deallocate()
    }

    /// Whether a queue can be bound in the network namespace at `namespacePath` (nil: this one): nil when
    /// it can, else why not. Runs on a thread of its own, which alone enters the namespace.
    public static func probe(namespacePath: String?, queue: UInt16 = 0xFAFF) -> String? {
        let result = Mutex<String??>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            if let namespacePath, let failure = ThreadNamespace.enter(namespacePath) {
                result.withLock { $0 = .some(failure) }
                return
            }
            do {
                _ = try NFQueueSocket(queue: queue, maxLength: 16)
                result.withLock { $0 = .some(nil) }
            } catch {
                result.withLock { $0 = .some("\(error)") }
            }
        }
        thread.start()
        done.wait()
        return result.withLock { $0 } ?? "the probe did not run"
    }

    /// Reads the packets waiting, at most `limit`, without blocking; `body` gets each packet.
    /// Returns how many were read and whether the kernel lost messages (socket buffer overrun).
    public func receive(limit: Int, _ body: (Packet) -> Void) throws(FaultlineError) -> (count: Int, overrun: Bool) {
        var count = 0
        var overrun = false
        while count < limit {
            let n = recv(fileDescriptor, receiveBuffer.baseAddress, receiveBuffer.count, Int32(MSG_DONTWAIT))
            if n < 0 {
                if errno == EAGAIN || errno == EWOULDBLOCK { break }
                if errno == EINTR { continue }
                if errno == ENOBUFS { overrun = true; continue }
                throw Self.failure("cannot read from queue \(queue)", errno)
            }
            var offset = 0
            while offset + 16 <= n {
                let length = Int(receiveBuffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                let type = receiveBuffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
                guard length >= 16, offset + length <= n else { break }
                // Other messages are errors for verdicts on ids already gone (harmless): skipped.
                if type == Self.messagePacket, let packet = packet(at: offset + 16 + 4, end: offset + length) {
                    body(packet)
                    count += 1
                }
                offset += (length + 3) & ~3
            }
        }
        return (count, overrun)
    }

    /// The packet in a packet message's attributes; nil without NFQA_PACKET_HDR.
    private func packet(at start: Int, end: Int) -> Packet? {
        var offset = start
        var id: UInt32?
        var packet = Packet(id: 0, local: true, mark: 0, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
        var truncated = false
        while offset + 4 <= end {
            let length = Int(receiveBuffer.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
            let type = Int32(receiveBuffer.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3fff)
            guard length >= 4, offset + length <= end else { break }
            func be32() -> UInt32 { UInt32(bigEndian: receiveBuffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)) }
            switch type {
            case Int32(NFQA_PACKET_HDR.rawValue) where length >= 8: id = be32()
            case Int32(NFQA_MARK.rawValue) where length >= 8: packet.mark = be32()
            case Int32(NFQA_IFINDEX_INDEV.rawValue): packet.local = false
            case Int32(NFQA_CAP_LEN.rawValue): truncated = true
            case Int32(NFQA_PAYLOAD.rawValue):
                packet.bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(receiveBuffer)[(offset + 4)..<(offset + length)])
            default: break
            }
            offset += (length + 3) & ~3
        }
        guard let id else { return nil }
        packet.id = id
        if truncated { packet.bytes = UnsafeRawBufferPointer(start: nil, count: 0) }
        return packet
    }

    /// Queues a verdict for packet `id`; they go to the kernel on `flush()` (or when the buffer fills).
    public func verdict(_ id: UInt32, accept: Bool) throws(FaultlineError) {
        if sendLength + Self.verdictSize > sendBuffer.count { try flush() }
        let base = sendLength
        func store<T>(_ value: T, _ at: Int) { sendBuffer.storeBytes(of: value, toByteOffset: base + at, as: T.self) }
        sequence &+= 1
        store(UInt32(Self.verdictSize), 0)
        store(Self.messageVerdict, 4)
        store(UInt16(NLM_F_REQUEST), 6)
        store(sequence, 8)
        store(UInt32(0), 12)
        store(UInt8(AF_UNSPEC), 16)
        store(UInt8(NFNETLINK_V0), 17)
        store(queue.bigEndian, 18)
        store(UInt16(12), 20)
        store(UInt16(NFQA_VERDICT_HDR.rawValue), 22)
        store((accept ? Self.accept : Self.drop).bigEndian, 24)
        store(id.bigEndian, 28)
        sendLength += Self.verdictSize
    }

    /// Queues an accept verdict that replaces the packet with `payload` (a corrupted copy of it): an NFQA_PAYLOAD
    /// attribute after the verdict header. A payload too big for one message is accepted unchanged.
    public func accept(_ id: UInt32, replacingWith payload: [UInt8]) throws(FaultlineError) {
        let padded = (payload.count + 3) & ~3
        let size = Self.verdictSize + 4 + padded
        guard size <= sendBuffer.count else { return try verdict(id, accept: true) }
        if sendLength + size > sendBuffer.count { try flush() }
        try verdict(id, accept: true)
        let base = sendLength - Self.verdictSize
        func store<T>(_ value: T, _ at: Int) { sendBuffer.storeBytes(of: value, toByteOffset: base + at, as: T.self) }
        store(UInt32(size), 0)
        store(UInt16(4 + payload.count), Self.verdictSize)
        store(UInt16(NFQA_PAYLOAD.rawValue), Self.verdictSize + 2)
        payload.withUnsafeBytes { bytes in
            UnsafeMutableRawBufferPointer(rebasing: sendBuffer[(base + Self.verdictSize + 4)...]).copyMemory(from: bytes)
        }
        for pad in payload.count..<padded { sendBuffer[base + Self.verdictSize + 4 + pad] = 0 }
        sendLength = base + size
    }

    /// Sends the verdicts queued so far, in one write.
    public func flush() throws(FaultlineError) {
        var offset = 0
        while offset < sendLength {
            let n = send(fileDescriptor, sendBuffer.baseAddress! + offset, sendLength - offset, 0)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == ENOBUFS { usleep(100); continue }
                sendLength = 0
                throw Self.failure("cannot send verdicts to queue \(queue)", errno)
            }
            offset += n
        }
        sendLength = 0
    }

    /// Sends one configuration message and waits for the kernel's answer.
    private func configure(_ build: (inout NetlinkMessage) -> Void) throws(FaultlineError) {
        sequence &+= 1
        var message = NetlinkMessage(type: Self.messageConfig, flags: UInt16(NLM_F_REQUEST | NLM_F_ACK), sequence: sequence, queue: queue)
        build(&message)
        let bytes = message.finished()
        guard bytes.withUnsafeBytes({ send(fileDescriptor, $0.baseAddress, $0.count, 0) }) == bytes.count else {
            throw Self.failure("cannot configure queue \(queue)", errno)
        }
        var poller = pollfd(fd: fileDescriptor, events: Int16(POLLIN), revents: 0)
        while true {
            guard poll(&poller, 1, 2_000) > 0 else { throw FaultlineError(.commandFailed, "queue \(queue): the kernel did not answer") }
            let n = recv(fileDescriptor, receiveBuffer.baseAddress, receiveBuffer.count, 0)
            if n < 0 {
                if errno == EINTR { continue }
                throw Self.failure("cannot configure queue \(queue)", errno)
            }
            // an ack or error is NLMSG_ERROR: the error code, then the header of the message it answers
            guard n >= 32, receiveBuffer.loadUnaligned(fromByteOffset: 4, as: UInt16.self) == UInt16(NLMSG_ERROR),
                  receiveBuffer.loadUnaligned(fromByteOffset: 28, as: UInt32.self) == sequence else { continue }
            let code = -receiveBuffer.loadUnaligned(fromByteOffset: 16, as: Int32.self)
            if code == 0 { return }
            if code == EPERM || code == EBUSY {
                throw FaultlineError(.commandFailed, "queue \(queue) is bound by another program (\(String(cString: strerror(code))))")
            }
            throw Self.failure("cannot configure queue \(queue)", code)
        }
    }

    static func failure(_ what: String, _ code: Int32) -> FaultlineError {
        var message = "\(what): \(String(cString: strerror(code)))"
        if code == EPROTONOSUPPORT || code == ENOENT || code == EOPNOTSUPP {
            message += " (is the kernel module nfnetlink_queue available? modprobe nfnetlink_queue)"
        }
        return FaultlineError(.commandFailed, message)
    }
}

/// One netfilter netlink message under construction: header, nfgenmsg, attributes.
struct NetlinkMessage {
    var bytes: [UInt8] = []

    init(type: UInt16, flags: UInt16, sequence: UInt32, queue: UInt16) {
        host32(0)
        host16(type)
        host16(flags)
        host32(sequence)
        host32(0)
        u8(UInt8(AF_UNSPEC))
        u8(UInt8(NFNETLINK_V0))
        be16(queue)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func host16(_ value: UInt16) { withUnsafeBytes(of: value) { bytes += $0 } }
    mutating func host32(_ value: UInt32) { withUnsafeBytes(of: value) { bytes += $0 } }
    mutating func be16(_ value: UInt16) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
    mutating func be32(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }

    /// Appends an attribute whose payload `body` writes, padded to four bytes.
    mutating func attribute(_ type: UInt16, _ body: (inout NetlinkMessage) -> Void) {
        let start = bytes.count
        host16(0)
        host16(type)
        body(&self)
        let length = UInt16(bytes.count - start)
        withUnsafeBytes(of: length) { bytes.replaceSubrange(start..<start + 2, with: $0) }
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// The message with its length filled in.
    func finished() -> [UInt8] {
        var result = bytes
        withUnsafeBytes(of: UInt32(bytes.count)) { result.replaceSubrange(0..<4, with: $0) }
        return result
    }
}
