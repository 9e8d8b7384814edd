import Foundation

/// What shows a fault acted, read from the kernel and the drivers before its revert: the packets its rules or its
/// qdisc handled, the processes it signalled or paused, the bytes it filled, the CPU time its hog burned. A fault in
/// place with no hits did nothing, and a run cannot say its steady state held against it.
public struct FaultEvidence: Sendable, Hashable, Codable {
    /// How much the fault acted on, in `unit`; 0 when it acted on nothing.
    public var hits: Double
    /// `packets`, `processes`, `bytes` or `cpu-seconds`.
    public var unit: String
    /// What was read, for people ("12 packets dropped by its DROP rules; 1,008 bytes").
    public var detail: String

    public init(hits: Double, unit: String, detail: String) {
        self.hits = hits
        self.unit = unit
        self.detail = detail
    }

    /// "12 packets", "1 process", "67108864 bytes", "0.42 cpu-seconds".
    public var amount: String {
        let number = hits.rounded() == hits && abs(hits) < 1e15 ? String(Int64(hits)) : String(format: "%.2f", hits)
        let singular = ["packets": "packet", "processes": "process", "bytes": "byte", "cpu-seconds": "cpu-second"]
        return "\(number) \(hits == 1 ? singular[unit] ?? unit : unit)"
    }

    /// The sum of two readings of one fault (a fault applied again with `every`).
    public static func + (lhs: FaultEvidence, rhs: FaultEvidence) -> FaultEvidence {
        FaultEvidence(hits: lhs.hits + rhs.hits, unit: lhs.unit, detail: [lhs.detail, rhs.detail].filter { !$0.isEmpty }.joined(separator: "; "))
    }
}
