import CFaultlineShims
import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The stress child process (`faultline hog`): burns CPU or holds memory for a while, then exits.
/// It dies with its parent and offers itself first to the OOM killer, so the agent is never the victim.
public enum Hog {
    /// Makes this process the one to go: killed with its parent, first in line for the OOM killer.
    public static func becomeExpendable() {
        ParentWatch.exitWhenParentEnds()
        if let fd = FileHandle(forWritingAtPath: "/proc/self/oom_score_adj") {
            fd.write(Data("1000".utf8))
            try? fd.close()
        }
    }

    /// Moves this process into each cgroup directory (a container's: its cpu and memory hierarchies), so that its
    /// load counts against that cgroup's limits as the container's own processes do.
    public static func join(cgroups: [String]) throws(FaultlineError) {
        for directory in cgroups {
            let path = directory + "/cgroup.procs"
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FaultlineError(.io, "cannot join the cgroup \(directory): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            let text = Array("\(getpid())\n".utf8)
            guard write(fd, text, text.count) == text.count else {
                throw FaultlineError(.io, "cannot join the cgroup \(directory): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// The memory limit of the first of `cgroups` that has one, and what the cgroup uses now: cgroup v1's
    /// memory.limit_in_bytes and memory.usage_in_bytes, or v2's memory.max and memory.current.
    public static func memoryLimit(cgroups: [String]) -> (limit: UInt64, used: UInt64)? {
        func number(_ path: String) -> UInt64? {
            FileBytes.text(path).flatMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        for directory in cgroups {
            if let limit = number(directory + "/memory.limit_in_bytes"), limit < 1 << 60, let used = number(directory + "/memory.usage_in_bytes") {
                return (limit, used)
            }
            if let limit = number(directory + "/memory.max"), let used = number(directory + "/memory.current") {
                return (limit, used)
            }
        }
        return nil
    }

    /// `workers` threads, each busy `load` of every 100 ms, for `duration`.
    public static func burnCPU(workers: Int, load: Percent, duration: Duration) -> Never {
        let period: UInt64 = 100_000_000
        let busy = UInt64(Double(period) * load.fraction)
        for _ in 0..<workers {
            let thread = Thread {
                var sink: UInt64 = 0
                while true {
                    let start = monotonicNanoseconds()
                    while monotonicNanoseconds() - start < busy { sink &+= 1 }
                    if busy < period { usleep(UInt32((period - busy) / 1_000)) }
                }
            }
            thread.start()
        }
        sleepFor(duration)
        exit(0)
    }

    /// Allocates and touches `bytes` of memory, holds it for `duration`.
    public static func holdMemory(bytes: UInt64, duration: Duration) -> Never {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let mapped = bytes > 0 && bytes <= UInt64(Int.max) ? mmap(nil, Int(bytes), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : nil
        if bytes > 0, mapped == nil || mapped == MAP_FAILED {
            // Said, and the process ends at once: a memory-stress that holds nothing must not pass for one in place.
            let message = "error: cannot allocate \(bytes) bytes: \(String(cString: strerror(errno)))\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(3)
        }
        if bytes > 0, let memory = mapped {
            let pointer = memory.assumingMemoryBound(to: UInt8.self)
            var offset = 0
            while offset < Int(bytes) {
                pointer[offset] = 1
                offset += pageSize
            }
        }
        sleepFor(duration)
        exit(0)
    }

    /// Bytes to allocate so that memory in use reaches `percent` of the total (from /proc/meminfo).
    public static func bytesToFillMemory(to percent: Percent, meminfo: String) -> UInt64 {
        func field(_ name: String) -> UInt64? {
            meminfo.split(separator: "\n").first { $0.hasPrefix(name + ":") }
                .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { UInt64($0) }.map { $0 * 1024 }
        }
        guard let total = field("MemTotal"), let available = field("MemAvailable") else { return 0 }
        let target = percent.fraction * Double(total)
        let inUse = Double(total - available)
        return target > inUse ? UInt64(target - inUse) : 0
    }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    static func sleepFor(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
    }
}
