import FaultlineCore
import Foundation

/// What the userspace delayer does to each packet, with netem's semantics: a delay of `delay` ± `jitter`
/// drawn from `distribution` (uniform when none), each draw `correlation` dependent on the last; a loss
/// of `loss`, a duplicate of `duplicate` and a corruption of `corrupt` (one bit flipped), each correlated so that
/// they come in runs; and reordering: `reorder` of the packets (after every `gap` − 1 delayed ones) sent at once
/// while the rest wait `delay`. Pure: the random source is passed in.
public struct DelayModel: Sendable {
    public var delayNanoseconds: Int64
    public var jitterNanoseconds: Int64
    public var distribution: DelayDistribution?
    public var loss: Double { losses.share }
    public var duplicate: Double { duplicates.share }
    public var corrupt: Double { corruptions.share }
    public var reorder: Double { reorders.share }
    /// netem's gap: this many packets minus one are always delayed before the next may go at once.
    public let gap: Int
    private var delayRandom: CorrelatedRandom
    private var losses: CorrelatedChance
    private var duplicates: CorrelatedChance
    private var corruptions: CorrelatedChance
    private var reorders: CorrelatedChance
    /// Packets delayed since the last one sent at once.
    private var delayedInARow = 0
    private let table: [Double]?

    public init(delay: Duration, jitter: Duration = .zero, correlation: Double = 0, distribution: DelayDistribution? = nil,
                loss: Double = 0, lossCorrelation: Double = 0, duplicate: Double = 0, duplicateCorrelation: Double = 0,
                corrupt: Double = 0, corruptCorrelation: Double = 0, reorder: Double = 0, reorderCorrelation: Double = 0, gap: Int = 1) {
        delayNanoseconds = Self.nanoseconds(delay)
        jitterNanoseconds = Self.nanoseconds(jitter)
        self.distribution = distribution
        delayRandom = CorrelatedRandom(correlation: correlation)
        losses = CorrelatedChance(share: loss, correlation: lossCorrelation)
        duplicates = CorrelatedChance(share: duplicate, correlation: duplicateCorrelation)
        corruptions = CorrelatedChance(share: corrupt, correlation: corruptCorrelation)
        reorders = CorrelatedChance(share: reorder, correlation: reorderCorrelation)
        self.gap = max(gap, 1)
        table = distribution.flatMap(DistributionTable.table)
    }

    /// Whether the next packet gets one bit flipped.
    public mutating func corrupts<R: RandomNumberGenerator>(using generator: inout R) -> Bool {
        corruptions.next(using: &generator)
    }

    /// Whether the next packet is sent at once, ahead of the delayed ones (netem's reorder): never without
    /// `reorder`; else only after `gap` − 1 delayed packets in a row, and then with a chance of `reorder`.
    public mutating func sendsAtOnce<R: RandomNumberGenerator>(using generator: inout R) -> Bool {
        guard reorders.share > 0 else { return false }
        if delayedInARow < gap - 1 || !reorders.next(using: &generator) {
            delayedInARow += 1
            return false
        }
        delayedInARow = 0
        return true
    }

    /// Flips one random bit of what follows the IP header (the transport header and data), as netem flips one bit
    /// of a packet: the receiver's checksum then catches it. A packet with nothing after its IP header is left alone;
    /// whether a bit was flipped.
    public static func flipOneBit<R: RandomNumberGenerator>(_ packet: inout [UInt8], using generator: inout R) -> Bool {
        guard let first = packet.first else { return false }
        let header: Int
        switch first >> 4 {
        case 4: header = Int(first & 0x0F) * 4
        case 6: header = 40
        default: return false
        }
        guard packet.count > header, header >= 20 else { return false }
        let index = Int.random(in: header..<packet.count, using: &generator)
        packet[index] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &generator)
        return true
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }

    /// Whether the next packet is lost.
    public mutating func lose<R: RandomNumberGenerator>(using generator: inout R) -> Bool {
        losses.next(using: &generator)
    }

    /// Whether the next packet is sent twice.
    public mutating func duplicates<R: RandomNumberGenerator>(using generator: inout R) -> Bool {
        duplicates.next(using: &generator)
    }

    /// The next packet's delay in nanoseconds, never negative.
    public mutating func nextDelay<R: RandomNumberGenerator>(using generator: inout R) -> Int64 {
        guard jitterNanoseconds > 0 else { return delayNanoseconds }
        let draw = delayRandom.next(using: &generator)
        let value: Int64
        if let table {
            let t = table[Int(draw % UInt32(table.count))]
            value = delayNanoseconds + Int64((Double(jitterNanoseconds) * t).rounded())
        } else {
            value = delayNanoseconds - jitterNanoseconds + Int64(Double(draw) / 4_294_967_296 * Double(2 * jitterNanoseconds))
        }
        return max(0, value)
    }
}

/// Yes or no with a chance of `share`; with a correlation the yeses come in runs, yet their share stays
/// `share`: a two-state chain with P(yes | last yes) = p + c(1 - p) and P(yes | last no) = p(1 - c).
/// (netem's correlated loss averages random numbers instead, and so loses less than asked.)
struct CorrelatedChance: Sendable {
    let share: Double
    let correlation: Double
    var last = false

    init(share: Double, correlation: Double) {
        self.share = min(max(share, 0), 1)
        self.correlation = min(max(correlation, 0), 1)
    }

    mutating func next<R: RandomNumberGenerator>(using generator: inout R) -> Bool {
        guard share > 0 else { return false }
        let chance = last ? share + correlation * (1 - share) : share * (1 - correlation)
        last = Double.random(in: 0..<1, using: &generator) < chance
        return last
    }
}

/// netem's correlated random numbers: each draw is `correlation` of the last plus the rest of a fresh one.
struct CorrelatedRandom: Sendable {
    let rho: UInt64
    var last: UInt32 = 0

    init(correlation: Double) {
        rho = correlation <= 0 ? 0 : UInt64(min(correlation, 1) * Double(UInt32.max))
    }

    mutating func next<R: RandomNumberGenerator>(using generator: inout R) -> UInt32 {
        let value = UInt64(UInt32.random(in: 0 ... .max, using: &generator))
        guard rho > 0 else { return UInt32(value) }
        let weight = rho + 1
        let answer = UInt32((value * ((1 << 32) - weight) + UInt64(last) * weight) >> 32)
        last = answer
        return answer
    }
}

/// Inverse distribution tables in standard deviations, like iproute2's netem tables (4096 entries).
enum DistributionTable {
    static let size = 4096

    static func table(_ distribution: DelayDistribution) -> [Double]? {
        switch distribution {
        case .uniform: nil
        case .normal: normal
        case .pareto: pareto
        case .paretonormal: paretonormal
        }
    }

    static func quantiles(_ inverse: (Double) -> Double) -> [Double] {
        (0..<size).map { inverse((Double($0) + 0.5) / Double(size)) }
    }

    static let normal = quantiles(inverseNormal)
    /// iproute2's pareto table: a Pareto with shape 3, shifted by its mean (1.5) and scaled by 4/3, at most 4.
    static let pareto = quantiles { p in min(4, (1 / pow(1 - p, 1.0 / 3) - 1.5) * 4 / 3) }
    /// A quarter normal and three quarters pareto, quantile by quantile.
    static let paretonormal = zip(normal, pareto).map { 0.25 * $0 + 0.75 * $1 }

    /// The standard normal quantile function (Acklam's rational approximation, relative error < 1.2e-9).
    static func inverseNormal(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01, -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - low {
            let q = (-2 * log(1 - p)).squareRoot()
            return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        let q = p - 0.5, r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }
}

/// A fast random source (xoshiro256**): seeded for reproducible tests, from the system otherwise.
public struct FastRandom: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64? = nil) {
        var mix = seed ?? UInt64.random(in: 0 ... .max)
        func splitMix() -> UInt64 {
            mix &+= 0x9E37_79B9_7F4A_7C15
            var z = mix
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = state.3 << 45 | state.3 >> 19
        return result
    }
}
