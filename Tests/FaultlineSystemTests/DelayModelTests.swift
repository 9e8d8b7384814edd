@testable import FaultlineSystem
import FaultlineCore
import Foundation
import Testing

/// The delayer's decisions: netem's delay distributions, correlation and loss, and the order packets leave in.
@Suite struct DelayModelTests {
    static let count = 100_000

    func delays(_ model: DelayModel, seed: UInt64 = 7) -> [Double] {
        var model = model
        var random = FastRandom(seed: seed)
        return (0..<Self.count).map { _ in Double(model.nextDelay(using: &random)) / 1e6 }
    }

    func mean(_ values: [Double]) -> Double { values.reduce(0, +) / Double(values.count) }
    func deviation(_ values: [Double]) -> Double {
        let m = mean(values)
        return (values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(values.count)).squareRoot()
    }

    @Test func aConstantDelayIsExact() {
        let values = delays(DelayModel(delay: .milliseconds(100)))
        #expect(values.allSatisfy { $0 == 100 })
    }

    @Test func uniformJitterStaysWithinItsBounds() {
        let values = delays(DelayModel(delay: .milliseconds(100), jitter: .milliseconds(20)))
        #expect(values.min()! >= 80 && values.max()! < 120)
        #expect(abs(mean(values) - 100) < 0.3)
        let expected: Double = 20 / 3.0.squareRoot()
        #expect(abs(deviation(values) - expected) < 0.3, "uniform: sd = jitter / sqrt(3)")
    }

    @Test func normalJitterHasTheJitterAsItsDeviation() {
        let values = delays(DelayModel(delay: .milliseconds(100), jitter: .milliseconds(20), distribution: .normal))
        #expect(abs(mean(values) - 100) < 0.3)
        #expect(abs(deviation(values) - 20) < 0.6)
        let floor: Double = 100 - 20 * 4.5
        #expect(values.min()! > floor, "the table ends near 4 standard deviations")
    }

    @Test func paretoHasALongTailAboveAndAFloorBelow() {
        let values = delays(DelayModel(delay: .milliseconds(100), jitter: .milliseconds(20), distribution: .pareto))
        let floor: Double = 100 - 40.0 / 3 - 0.01
        #expect(values.min()! >= floor, "iproute2's pareto table starts at -2/3")
        #expect(values.max()! > 100 + 20 * 3, "and reaches far above")
        let sorted = values.sorted()
        #expect(sorted[values.count / 2] < 100, "most delays fall below the mean")
        let mixed = delays(DelayModel(delay: .milliseconds(100), jitter: .milliseconds(20), distribution: .paretonormal))
        #expect(mixed.min()! < values.min()!, "paretonormal reaches lower than pareto")
    }

    @Test func negativeDelaysBecomeZero() {
        let values = delays(DelayModel(delay: .milliseconds(10), jitter: .milliseconds(50), distribution: .normal))
        #expect(values.min()! == 0)
    }

    @Test func correlationTiesEachDelayToTheLast() {
        func lagOne(_ values: [Double]) -> Double {
            let m = mean(values)
            let pairs = zip(values, values.dropFirst()).map { ($0 - m) * ($1 - m) }.reduce(0, +)
            return pairs / values.map { ($0 - m) * ($0 - m) }.reduce(0, +)
        }
        let free = delays(DelayModel(delay: .milliseconds(100), jitter: .milliseconds(20)))
        let tied = delays(DelayModel(delay: .milliseconds(100), jitter: .milliseconds(20), correlation: 0.9))
        #expect(abs(lagOne(free)) < 0.02)
        #expect(lagOne(tied) > 0.8)
    }

    @Test(arguments: [0.0, 0.01, 0.3, 0.5, 1.0])
    func lossDropsItsShare(_ share: Double) {
        var model = DelayModel(delay: .zero, loss: share)
        var random = FastRandom(seed: 11)
        let lost = (0..<Self.count).filter { _ in model.lose(using: &random) }.count
        #expect(abs(Double(lost) / Double(Self.count) - share) < 0.005, "lost \(lost) of \(Self.count)")
    }

    @Test func correlatedLossKeepsItsMeanAndComesInRuns() {
        var model = DelayModel(delay: .zero, loss: 0.3, lossCorrelation: 0.5)
        var random = FastRandom(seed: 5)
        let decisions = (0..<Self.count).map { _ in model.lose(using: &random) }
        let share = Double(decisions.filter { $0 }.count) / Double(Self.count)
        let repeats = Double(zip(decisions, decisions.dropFirst()).filter { $0 && $1 }.count) / Double(decisions.filter { $0 }.count)
        print("loss 30% with 50% correlation: \(share) lost, P(lost | last lost) = \(repeats)")
        #expect(abs(share - 0.3) < 0.01, "the share lost stays what was asked")
        #expect(abs(repeats - (0.3 + 0.5 * 0.7)) < 0.01, "a loss makes the next one likelier: P = p + c(1 - p)")
    }

    @Test func duplicatesComeInTheirShareAndLossesDoNotDisturbThem() {
        var model = DelayModel(delay: .zero, loss: 0.1, duplicate: 0.2, duplicateCorrelation: 0.25)
        var random = FastRandom(seed: 9)
        var twins = 0
        for _ in 0..<Self.count {
            _ = model.lose(using: &random)
            if model.duplicates(using: &random) { twins += 1 }
        }
        #expect(abs(Double(twins) / Double(Self.count) - 0.2) < 0.005, "\(twins) duplicates")
    }

    @Test func theSameSeedGivesTheSameDecisions() {
        let model = DelayModel(delay: .milliseconds(50), jitter: .milliseconds(10), correlation: 0.25, loss: 0.1)
        #expect(delays(model, seed: 3) == delays(model, seed: 3))
        #expect(delays(model, seed: 3) != delays(model, seed: 4))
    }

    @Test func heldPacketsLeaveByDeadlineAndInArrivalOrderOnTies() {
        var heap = MinHeap()
        var random = FastRandom(seed: 1)
        var expected: [PacketDelayer.Held] = []
        for id in UInt32(1)...2_000 {
            let held = PacketDelayer.Held(deadline: Int64.random(in: 0..<50, using: &random), id: id)
            heap.push(held)
            expected.append(held)
        }
        var order: [PacketDelayer.Held] = []
        while let next = heap.popFirst() { order.append(next) }
        #expect(order.map(\.id) == expected.sorted { ($0.deadline, $0.id) < ($1.deadline, $1.id) }.map(\.id))
        // Ids wrap around at 2^32: the older one still leaves first.
        heap.push(PacketDelayer.Held(deadline: 5, id: 1))
        heap.push(PacketDelayer.Held(deadline: 5, id: UInt32.max))
        #expect(heap.popFirst()?.id == UInt32.max)
    }

    @Test("corrupt: that share of 2,000 packets (±3 points), one bit flipped each, never in the IP header")
    func corruptFlipsOneBitAfterTheIPHeader() {
        var model = DelayModel(delay: .zero, corrupt: 0.2)
        var random = FastRandom(seed: 11)
        let chosen = (0..<2000).filter { _ in model.corrupts(using: &random) }.count
        #expect(abs(Double(chosen) / 20 - 20) <= 3, "\(chosen) of 2,000")
        for (packet, header) in [([UInt8(0x45)] + [UInt8](repeating: 0, count: 19) + [UInt8](repeating: 0xAA, count: 30), 20),
                                 ([UInt8(0x46)] + [UInt8](repeating: 0, count: 23) + [UInt8](repeating: 0xAA, count: 8), 24),
                                 ([UInt8(0x60)] + [UInt8](repeating: 0, count: 39) + [UInt8](repeating: 0x55, count: 12), 40)] {
            for _ in 0..<200 {
                var copy = packet
                #expect(DelayModel.flipOneBit(&copy, using: &random))
                let flipped = zip(packet, copy).map { ($0 ^ $1).nonzeroBitCount }
                #expect(flipped.reduce(0, +) == 1 && flipped.prefix(header).allSatisfy { $0 == 0 }, "\(flipped)")
            }
        }
        var bare = [UInt8(0x45)] + [UInt8](repeating: 0, count: 19)
        #expect(!DelayModel.flipOneBit(&bare, using: &random), "nothing after the IP header: left alone")
    }

    @Test("reorder as netem: gap 1 sends that share at once (±3 points on 2,000); gap 5 keeps 4 delayed in a row before each one")
    func reorderFollowsNetemsGap() {
        var model = DelayModel(delay: .milliseconds(20), reorder: 0.25)
        var random = FastRandom(seed: 12)
        let atOnce = (0..<2000).map { _ in model.sendsAtOnce(using: &random) }
        #expect(abs(Double(atOnce.filter { $0 }.count) / 20 - 25) <= 3, "\(atOnce.filter { $0 }.count) of 2,000")
        var gapped = DelayModel(delay: .milliseconds(20), reorder: 0.5, gap: 5)
        let decisions = (0..<2000).map { _ in gapped.sendsAtOnce(using: &random) }
        let indices = decisions.indices.filter { decisions[$0] }
        #expect(zip(indices, indices.dropFirst()).allSatisfy { $1 - $0 >= 5 }, "at least gap − 1 delayed between two sent at once")
        // After 4 forced delays each packet goes at once with a chance of 1/2: one in 4 + 2 = 6.
        #expect(abs(Double(indices.count) / 20 - 100.0 / 6) <= 3, "\(indices.count) of 2,000")
        var none = DelayModel(delay: .milliseconds(20))
        #expect(!(0..<100).contains { _ in none.sendsAtOnce(using: &random) }, "no reorder: all delayed")
    }

}
