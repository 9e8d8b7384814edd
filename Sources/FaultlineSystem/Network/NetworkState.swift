import FaultlineCore
import Foundation

/// Reads the tc and iptables state that shows whether a network fault is in place.
public struct NetworkState: Sendable {
    let runner: any CommandRunner

    public init(runner: any CommandRunner) { self.runner = runner }

    static func prefix(_ namespace: String?) -> [String] {
        namespace.map { ["nsenter", "--net=\($0)", "--"] } ?? []
    }

    /// The root qdisc of `device`, read with `tc -j`.
    public func rootQdisc(namespace: String?, device: String) async throws(FaultlineError) -> RootQdisc? {
        let result = try await runner.run(Self.prefix(namespace) + ["tc", "-j", "-d", "qdisc", "show", "dev", device])
        guard result.succeeded else {
            throw FaultlineError(.commandFailed, "cannot read the qdiscs of '\(device)'", cause: result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        do {
            return try HostFactsReader.rootQdiscs(fromTCJSON: result.standardOutput, device: device)[device]
        } catch {
            throw FaultlineError(.commandFailed, "cannot parse the qdiscs of '\(device)'", cause: "\(error)")
        }
    }

    /// The kind of `device`'s ingress qdisc (ingress or clsact), nil when it has none.
    public func ingressQdisc(namespace: String?, device: String) async throws(FaultlineError) -> String? {
        let result = try await runner.run(Self.prefix(namespace) + ["tc", "-j", "qdisc", "show", "dev", device])
        guard result.succeeded else {
            // The device itself gone (a container's veth with it) takes its qdiscs along.
            if try await !linkExists(namespace: namespace, name: device) { return nil }
            throw FaultlineError(.commandFailed, "cannot read the qdiscs of '\(device)'", cause: result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        do {
            return try HostFactsReader.ingressQdiscs(fromTCJSON: result.standardOutput, device: device)[device]
        } catch {
            throw FaultlineError(.commandFailed, "cannot parse the qdiscs of '\(device)'", cause: "\(error)")
        }
    }

    /// Whether a network device named `name` exists (`ip -j link show`).
    public func linkExists(namespace: String?, name: String) async throws(FaultlineError) -> Bool {
        let result = try await runner.run(Self.prefix(namespace) + ["ip", "-j", "link", "show"])
        guard result.succeeded else {
            throw FaultlineError(.commandFailed, "cannot list the network devices", cause: result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        do {
            return try HostFactsReader.interfaces(fromIPLinkJSON: result.standardOutput).contains(name)
        } catch {
            throw FaultlineError(.commandFailed, "cannot parse the network devices", cause: "\(error)")
        }
    }

    /// Whether the iptables (or ip6tables) chain exists in `table`. Reads the whole table:
    /// iptables-nft answers `-S MISSING` with "incompatible" rather than "no such chain".
    public func chainExists(namespace: String?, tool: String, chain: String, table: String = "filter") async throws(FaultlineError) -> Bool {
        let result = try await runner.run(Self.prefix(namespace) + [tool, "-w", "5", "-t", table, "-S"], timeout: .seconds(10), outputLimit: 16 << 20)
        guard result.succeeded else {
            throw FaultlineError(.commandFailed, "cannot list \(tool) \(table) rules", cause: result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return result.standardOutput.split(separator: "\n").contains { $0 == "-N \(chain)" }
    }
}

/// What a fault's rules and qdisc handled: the evidence that a network fault acted.
extension NetworkState {
    /// One rule's counters.
    public struct RuleCounter: Sendable, Hashable {
        public var target: String
        public var packets: Int
        public var bytes: Int
    }

    /// The statistics of one qdisc (`tc -s`).
    public struct QdiscStatistics: Sendable, Hashable {
        public var kind: String
        public var packets: Int
        public var bytes: Int
        public var drops: Int
        public var overlimits: Int
    }

    /// The packets and bytes each rule of `chain` matched, with its target (`iptables -L CHAIN -n -v -x`).
    public func chainCounters(namespace: String?, tool: String, chain: String, table: String = "filter") async throws(FaultlineError) -> [RuleCounter] {
        let result = try await runner.run(Self.prefix(namespace) + [tool, "-w", "5", "-t", table, "-L", chain, "-n", "-v", "-x"],
                                          timeout: .seconds(10), outputLimit: 16 << 20)
        guard result.succeeded else {
            throw FaultlineError(.commandFailed, "cannot read the counters of \(tool) chain \(chain)", cause: result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return Self.ruleCounters(fromListing: result.standardOutput)
    }

    /// Parses `iptables -L CHAIN -n -v -x`: a `Chain` line, a header, then `pkts bytes target ...` per rule.
    public static func ruleCounters(fromListing text: String) -> [RuleCounter] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 3, let packets = Int(fields[0]), let bytes = Int(fields[1]) else { return nil }
            return RuleCounter(target: String(fields[2]), packets: packets, bytes: bytes)
        }
    }

    /// The statistics of the qdisc with `handle` on `device` (`tc -s -j qdisc show`); nil when there is none.
    public func qdiscStatistics(namespace: String?, device: String, handle: String) async throws(FaultlineError) -> QdiscStatistics? {
        let result = try await runner.run(Self.prefix(namespace) + ["tc", "-s", "-j", "qdisc", "show", "dev", device])
        guard result.succeeded else {
            throw FaultlineError(.commandFailed, "cannot read the qdisc statistics of '\(device)'", cause: result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return Self.qdiscStatistics(fromTCJSON: result.standardOutput, handle: handle)
    }

    /// Parses `tc -s -j qdisc show` for the qdisc with `handle`.
    public static func qdiscStatistics(fromTCJSON text: String, handle: String) -> QdiscStatistics? {
        guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]],
              let entry = list.first(where: { $0["handle"] as? String == handle }) else { return nil }
        func number(_ key: String) -> Int { (entry[key] as? NSNumber)?.intValue ?? 0 }
        return QdiscStatistics(kind: entry["kind"] as? String ?? "?", packets: number("packets"), bytes: number("bytes"),
                               drops: number("drops"), overlimits: number("overlimits"))
    }
}
