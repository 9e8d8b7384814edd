import ArgumentParser
import FaultlineCore
import FaultlineSystem
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// `faultline delayer`: the userspace NFQUEUE engine a latency, packet-loss, duplicate, corrupt or reorder fault starts when
/// the kernel has no sch_netem (or the scenario asks for `engine: nfqueue`).
struct DelayerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delayer",
        abstract: "Delay, drop, duplicate, corrupt or reorder the packets of an NFQUEUE queue (started by the network faults' nfqueue engine).",
        discussion: """
            Binds the queue in the current network namespace, prints 'ready queue=N', and runs until \
            SIGTERM/SIGINT or until its parent process ends; then every packet still held goes at once, \
            and it prints 'stats: ...'. If it is killed, the kernel lets the traffic pass (--queue-bypass).
            """,
        shouldDisplay: false
    )

    @Option(help: "The NFQUEUE queue number (0-65535).") var queue: UInt16
    @Option(help: "Delay added to each packet, like 100ms.") var delay: String = "0ms"
    @Option(help: "Random variation of the delay, like 20ms.") var jitter: String?
    @Option(help: "How much each delay depends on the last, in percent.") var correlation: Double = 0
    @Option(help: "Delay distribution: uniform, normal, pareto, paretonormal (default uniform).") var distribution: String?
    @Option(help: "Share of packets dropped, in percent.") var loss: Double = 0
    @Option(help: "How much each loss decision depends on the last, in percent.") var lossCorrelation: Double = 0
    @Option(help: "Share of packets sent twice, in percent (needs --interface).") var duplicate: Double = 0
    @Option(help: "How much each duplicate decision depends on the last, in percent.") var duplicateCorrelation: Double = 0
    @Option(help: "Share of packets with one random bit flipped (after the IP header), in percent.") var corrupt: Double = 0
    @Option(help: "How much each corruption decision depends on the last, in percent.") var corruptCorrelation: Double = 0
    @Option(help: "Share of packets sent at once, ahead of the others that wait --delay (netem's reorder), in percent.") var reorder: Double = 0
    @Option(help: "How much each reorder decision depends on the last, in percent.") var reorderCorrelation: Double = 0
    @Option(help: "With --reorder: this many packets minus one are always delayed before the next may go at once (netem's gap).") var gap: Int = 1
    @Option(help: "Packets held at most; beyond it packets pass undelayed.") var limit: Int = Planner.delayerLimit
    @Option(help: ArgumentHelp("Send the packets made on this host out again as copies through this interface (marked \(Planner.delayerMarkText), which the fault's chain lets pass); without it every packet is held in the kernel.", valueName: "interface"))
    var interface: String?
    @Option(help: "Seed of the random numbers (for reproducible tests).") var seed: UInt64?
    @Flag(help: "Keep running when the parent process ends.") var ignoreParent = false

    func validate() throws {
        for (name, value) in [("--correlation", correlation), ("--loss", loss), ("--loss-correlation", lossCorrelation),
                              ("--duplicate", duplicate), ("--duplicate-correlation", duplicateCorrelation), ("--corrupt", corrupt),
                              ("--corrupt-correlation", corruptCorrelation), ("--reorder", reorder), ("--reorder-correlation", reorderCorrelation)]
            where !(0...100).contains(value) {
            throw ValidationError("\(name) must be 0-100, got \(value)")
        }
        guard (1...1_000_000).contains(gap) else { throw ValidationError("--gap must be 1-1000000, got \(gap)") }
        guard limit > 0 else { throw ValidationError("--limit must be positive") }
        if duplicate > 0, interface == nil { throw ValidationError("--duplicate needs --interface: duplicates are sent as copies") }
        if let interface {
            do { _ = try InterfaceName(parsing: interface) } catch { throw ValidationError("invalid --interface: \(error.message)") }
        }
        if let distribution, DelayDistribution(rawValue: distribution) == nil {
            throw ValidationError("--distribution must be one of \(DelayDistribution.allCases.map(\.rawValue).joined(separator: ", ")), got '\(distribution)'")
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let model = DelayModel(delay: try Self.duration(delay, "--delay"), jitter: try jitter.map { try Self.duration($0, "--jitter") } ?? .zero,
                               correlation: correlation / 100, distribution: distribution.flatMap(DelayDistribution.init(rawValue:)),
                               loss: loss / 100, lossCorrelation: lossCorrelation / 100,
                               duplicate: duplicate / 100, duplicateCorrelation: duplicateCorrelation / 100,
                               corrupt: corrupt / 100, corruptCorrelation: corruptCorrelation / 100,
                               reorder: reorder / 100, reorderCorrelation: reorderCorrelation / 100, gap: gap)
        let parent = getppid()
        if !ignoreParent, parent == 1 { throw ExitStatus.preflightFailed }
        let settings = PacketDelayer.Settings(queue: queue, model: model, limit: limit, seed: seed, parent: ignoreParent ? nil : parent,
                                              reinject: interface.map { ($0, Planner.delayerMark) })
        do {
            _ = try PacketDelayer(settings: settings, output: Self.say).run()
        } catch {
            Self.say("error: \(error)")
            throw ExitStatus.preflightFailed
        }
    }

    /// Writes one line to standard output at once (the driver reads it through a pipe).
    static func say(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
    }

    static func duration(_ text: String, _ option: String) throws -> Duration {
        do {
            return .microseconds(try TimeSpan(parsing: text).microseconds)
        } catch {
            throw ValidationError("invalid \(option): \(error.message)")
        }
    }
}
