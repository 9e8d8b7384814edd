import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `--agents dns:NAME:PORT`: every agent behind one DNS name, one per A or AAAA record, as a Kubernetes headless
/// Service gives them. The controller connects to each address; over https (the default: off loopback agents serve
/// HTTPS only) each agent's certificate is checked for NAME, which is also sent as the server name (SNI), so one
/// certificate naming the Service serves every agent.
struct AgentDiscovery: Sendable, Equatable {
    var scheme: String
    var host: String
    var port: Int

    /// The base URL every agent found shares: the name, not an address.
    var url: String { "\(scheme)://\(host):\(port)" }

    /// Parses `dns:NAME:PORT`, `dns:https://NAME:PORT` or `dns:http://NAME:PORT`; a usage error says what is wrong.
    static func parse(_ spec: String) throws(FaultlineError) -> AgentDiscovery {
        var rest = Substring(spec)
        guard rest.hasPrefix("dns:") else { throw FaultlineError(.usage, "'\(spec)' is not a DNS discovery (dns:NAME:PORT)") }
        rest = rest.dropFirst(4)
        var scheme = "https"
        for candidate in ["https", "http"] where rest.hasPrefix(candidate + "://") {
            scheme = candidate
            rest = rest.dropFirst(candidate.count + 3)
        }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
            throw FaultlineError(.usage, "'\(spec)': expected dns:NAME:PORT (e.g. dns:faultline-agents.faultline.svc.cluster.local:7465)")
        }
        let host = String(rest[..<colon])
        guard isHostName(host) else {
            throw FaultlineError(.usage, "'\(spec)': '\(host)' is not a DNS name (letters, digits, '-' and '.', labels of 1 to 63)")
        }
        return AgentDiscovery(scheme: scheme, host: host, port: port)
    }

    /// A DNS name: labels of 1 to 63 letters, digits and inner hyphens, 253 characters at most, a final dot allowed.
    static func isHostName(_ name: String) -> Bool {
        let trimmed = name.hasSuffix(".") ? String(name.dropLast()) : name
        guard !trimmed.isEmpty, trimmed.utf8.count <= 253 else { return false }
        return trimmed.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.utf8.allSatisfy { $0 == UInt8(ascii: "-") || ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 122) }
        }
    }

    /// One endpoint per address the name has now, in the resolver's order; a name with none is an error (exit 3).
    func endpoints() throws(FaultlineError) -> [AgentEndpoint] {
        try Self.addresses(of: host).map { address in
            let shown = address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
            return AgentEndpoint(name: shown, url: url, address: address)
        }
    }

    /// Every IPv4 and IPv6 address `host` resolves to (getaddrinfo: /etc/hosts, then DNS), each once.
    static func addresses(of host: String) throws(FaultlineError) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else {
            throw FaultlineError(.preflight, "dns:\(host): no agent found: \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var found: [String] = []
        var entry = list
        while let current = entry {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            var text: String?
            switch current.pointee.ai_family {
            case AF_INET:
                var address = current.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                if inet_ntop(AF_INET, &address, &buffer, socklen_t(buffer.count)) != nil { text = String(cString: buffer) }
            case AF_INET6:
                var address = current.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                if inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil { text = String(cString: buffer) }
            default:
                break
            }
            if let text, !found.contains(text) { found.append(text) }
            entry = current.pointee.ai_next
        }
        guard !found.isEmpty else { throw FaultlineError(.preflight, "dns:\(host): no agent found: the name has no IPv4 or IPv6 address") }
        return found
    }
}
