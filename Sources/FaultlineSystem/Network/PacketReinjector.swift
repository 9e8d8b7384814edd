import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Sends copies of packets out again through raw sockets (IP header included), bound to the fault's
/// interface and marked so that the fault's chain lets them pass. The delayer uses it for the packets
/// made on this host: it drops the original at once — which frees the sender's buffer, as netem does —
/// and sends the copy when its delay is over. Not thread-safe: the delayer's thread owns it.
public final class PacketReinjector {
    let interface: String
    let mark: UInt32
    private var sockets: [Int32: Int32] = [:]  // address family -> socket

    public init(interface: String, mark: UInt32) {
        self.interface = interface
        self.mark = mark
    }

    deinit {
        for fd in sockets.values { close(fd) }
    }

    /// Opens the raw sockets now; nil when they work, else why not (no CAP_NET_RAW, no such interface).
    public func prepare() -> String? {
        for family in [AF_INET, AF_INET6] where socket(for: family) == nil {
            return "cannot open a raw \(family == AF_INET ? "IPv4" : "IPv6") socket on '\(interface)': \(String(cString: strerror(errno)))"
        }
        return nil
    }

    /// Sends one IPv4 or IPv6 packet; false (with errno) when it could not be sent.
    public func send(_ packet: [UInt8]) -> Bool {
        guard let first = packet.first else { return false }
        switch first >> 4 {
        case 4 where packet.count >= 20:
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            withUnsafeMutableBytes(of: &address.sin_addr) { $0.copyBytes(from: packet[16..<20]) }
            return send(packet, family: AF_INET, to: address)
        case 6 where packet.count >= 40:
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            withUnsafeMutableBytes(of: &address.sin6_addr) { $0.copyBytes(from: packet[24..<40]) }
            return send(packet, family: AF_INET6, to: address)
        default:
            errno = EAFNOSUPPORT
            return false
        }
    }

    /// Sends `packet` to `address` (a sockaddr_in or sockaddr_in6) without waiting for buffer space.
    private func send<Address>(_ packet: [UInt8], family: Int32, to address: Address) -> Bool {
        guard let fd = socket(for: family) else { return false }
        var address = address
        let sent = packet.withUnsafeBytes { bytes in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, socklen_t(MemoryLayout<Address>.size))
                }
            }
        }
        return sent == packet.count
    }

    /// The raw socket of `family` (IPPROTO_RAW: the packet carries its own header), made on first use.
    private func socket(for family: Int32) -> Int32? {
        if let fd = sockets[family] { return fd }
        let fd = Glibc.socket(family, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Int32(IPPROTO_RAW))
        guard fd >= 0 else { return nil }
        var value = mark
        var size: Int32 = 4 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        let bound = interface.withCString { setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, $0, socklen_t(strlen($0) + 1)) }
        guard setsockopt(fd, SOL_SOCKET, SO_MARK, &value, socklen_t(MemoryLayout<UInt32>.size)) == 0, bound == 0 else {
            let saved = errno
            close(fd)
            errno = saved
            return nil
        }
        sockets[family] = fd
        return fd
    }
}
