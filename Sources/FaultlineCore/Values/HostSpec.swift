#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP address family.
public enum IPFamily: String, Sendable, Codable, Hashable, CaseIterable {
    case ipv4, ipv6
}

/// An IP network: an address and a prefix length (a single address has the full prefix).
public struct IPNetwork: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    public let family: IPFamily
    /// Canonical address text (`10.0.0.5`, `fd00::1`).
    public let address: String
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let (family, canonical) = Self.canonical(String(parts[0])) else { return nil }
        let maxPrefix = family == .ipv4 ? 32 : 128
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maxPrefix).contains(value), !parts[1].hasPrefix("+") else { return nil }
            prefix = value
        }
        self.family = family
        self.address = canonical
        self.prefix = prefix
    }

    /// `10.0.0.0/8`, or `10.0.0.5/32` for one address.
    public var description: String { "\(address)/\(prefix)" }
    public var isSingleAddress: Bool { prefix == (family == .ipv4 ? 32 : 128) }
    /// Short form for people: the address alone when it is one address.
    public var shortDescription: String { isSingleAddress ? address : description }

    public var isLoopback: Bool {
        family == .ipv4 ? address.hasPrefix("127.") : address == "::1"
    }

    static func canonical(_ text: String) -> (IPFamily, String)? {
        var v4 = in_addr()
        if !text.contains(":"), inet_pton(AF_INET, text, &v4) == 1 {
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            guard inet_ntop(AF_INET, &v4, &buffer, socklen_t(buffer.count)) != nil else { return nil }
            return (.ipv4, String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            guard inet_ntop(AF_INET6, &v6, &buffer, socklen_t(buffer.count)) != nil else { return nil }
            return (.ipv6, String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return nil
    }

    public static func < (a: IPNetwork, b: IPNetwork) -> Bool {
        (a.family.rawValue, a.address, a.prefix) < (b.family.rawValue, b.address, b.prefix)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = IPNetwork(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid IP network '\(text)'"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(shortDescription)
    }
}

/// A host in a traffic filter: an IP address, a CIDR network or a DNS name (resolved at plan time).
public enum HostSpec: TextValue {
    case network(IPNetwork)
    case name(String)

    public init(parsing text: String) throws(ValueError) {
        if let network = IPNetwork(text) {
            self = .network(network)
            return
        }
        let looksNumeric = text.allSatisfy { $0.isNumber || $0 == "." || $0 == "/" }
        if text.contains(":") || text.contains("/") || looksNumeric {
            throw ValueError("invalid host '\(text)': not an IP address or CIDR network")
        }
        let name = text.hasSuffix(".") ? String(text.dropLast()) : text
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        let validLabels = labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
        }
        guard !name.isEmpty, name.count <= 253, validLabels else {
            throw ValueError("invalid host '\(text)': use an IP address, a CIDR network or a DNS name")
        }
        self = .name(name.lowercased())
    }

    public var description: String {
        switch self {
        case .network(let network): network.shortDescription
        case .name(let name): name
        }
    }
}
