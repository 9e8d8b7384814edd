import ArgumentParser
import FaultlineCore
import FaultlineSystem
import Foundation

/// `faultline hog cpu|memory`: the stress child process a cpu-stress or memory-stress fault starts.
struct HogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hog",
        abstract: "Burn CPU or hold memory for a while (started by stress faults).",
        shouldDisplay: false,
        subcommands: [CPU.self, Memory.self]
    )

    struct CPU: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "cpu", abstract: "Busy workers with a duty cycle.")

        @Option(help: "Worker threads, or 'all' for one per core.") var workers: String = "all"
        @Option(help: "Busy share of each 100 ms, in percent.") var load: Double = 100
        @Option(help: "How long, like 30s.") var duration: String
        @Option(help: "A cgroup directory to join first (a container's), so the load counts against its limits.", completion: .directory) var cgroup: [String] = []

        func run() throws {
            let time = try hogDuration(duration)
            try Hog.join(cgroups: cgroup)
            guard let share = try? Percent(parsing: "\(load)%"), share.value > 0 else { throw ValidationError("--load must be 1–100") }
            let count = workers == "all" ? ProcessInfo.processInfo.activeProcessorCount : Int(workers) ?? 0
            guard count > 0 else { throw ValidationError("--workers must be a positive number or 'all'") }
            Hog.becomeExpendable()
            Hog.burnCPU(workers: count, load: share, duration: time)
        }
    }

    struct Memory: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "memory", abstract: "Allocated and touched memory.")

        @Option(help: "Bytes to allocate.") var size: UInt64?
        @Option(help: "Fill memory in use up to this percent of the total.") var fillTo: Double?
        @Option(help: "How long, like 30s.") var duration: String
        @Option(help: "A cgroup directory to join first (a container's), so the memory counts against its limit.", completion: .directory) var cgroup: [String] = []

        func run() throws {
            let time = try hogDuration(duration)
            try Hog.join(cgroups: cgroup)
            let bytes: UInt64
            if let size {
                bytes = size
            } else if let fillTo, let percent = try? Percent(parsing: "\(fillTo)%"), let (limit, used) = Hog.memoryLimit(cgroups: cgroup) {
                // In a container with a memory limit, the share is of that limit.
                let target = UInt64(Double(limit) * percent.fraction)
                bytes = target > used ? target - used : 0
            } else if let fillTo, let percent = try? Percent(parsing: "\(fillTo)%") {
                bytes = Hog.bytesToFillMemory(to: percent, meminfo: (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? "")
            } else {
                throw ValidationError("give --size or --fill-to")
            }
            Hog.becomeExpendable()
            Hog.holdMemory(bytes: bytes, duration: time)
        }
    }
}

private func hogDuration(_ text: String) throws -> Duration {
    do {
        return .microseconds(try TimeSpan(parsing: text).microseconds)
    } catch {
        throw ValidationError("invalid --duration: \(error.message)")
    }
}
