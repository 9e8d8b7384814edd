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
