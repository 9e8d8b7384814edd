import CLibcap
import FaultlineCore
import Glibc

/// A Linux capability Faultline may need.
public enum Capability: Int32, Sendable, CaseIterable, CustomStringConvertible {
    case dacOverride = 1
    case kill = 5
    case netAdmin = 12
    case netRaw = 13
    case sysPtrace = 19
    case sysAdmin = 21

    /// `NET_ADMIN`, as `--cap-add` takes it.
    public var description: String {
        switch self {
        case .dacOverride: "DAC_OVERRIDE"
        case .kill: "KILL"
        case .netAdmin: "NET_ADMIN"
        case .netRaw: "NET_RAW"
        case .sysPtrace: "SYS_PTRACE"
        case .sysAdmin: "SYS_ADMIN"
        }
    }
}

/// The effective, permitted and bounding capability sets of this process, read through libcap.
public struct ProcessCapabilities: Sendable, Hashable {
    public var effective: Set<Int32>
    public var permitted: Set<Int32>
    public var bounding: Set<Int32>

    /// Reads this process's sets.
    public static func current() throws(FaultlineError) -> ProcessCapabilities {
        guard let caps = cap_get_proc() else {
            throw FaultlineError(.io, "cannot read this process's capabilities (cap_get_proc)")
        }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        var result = ProcessCapabilities(effective: [], permitted: [], bounding: [])
        for capability in Capability.allCases {
            var value = CAP_CLEAR
            if cap_get_flag(caps, cap_value_t(capability.rawValue), CAP_EFFECTIVE, &value) == 0, value == CAP_SET {
                result.effective.insert(capability.rawValue)
            }
            if cap_get_flag(caps, cap_value_t(capability.rawValue), CAP_PERMITTED, &value) == 0, value == CAP_SET {
                result.permitted.insert(capability.rawValue)
            }
            if cap_get_bound(cap_value_t(capability.rawValue)) == 1 {
                result.bounding.insert(capability.rawValue)
            }
        }
        return result
    }

    public func hasEffective(_ capability: Capability) -> Bool { effective.contains(capability.rawValue) }
}

extension ProcessCapabilities {
    /// Makes a non-root process's permitted capabilities effective and ambient, so the commands it runs (tc,
    /// iptables, the guard) have them too; returns the capability numbers raised.
    ///
    /// This is how the container image runs as a non-root user: its binary carries file capabilities
    /// `cap_net_admin,cap_net_raw=ip` (permitted, not effective, so exec never fails where the container's bounding
    /// set lacks one), and the process raises what it got. Root needs nothing (its children get every capability).
    /// Capability sets belong to a thread: call this first thing, before any other thread exists.
    @discardableResult
    public static func raiseForChildren() -> [Int32] {
        guard geteuid() != 0, let caps = cap_get_proc() else { return [] }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        var raised: [cap_value_t] = []
        for capability in 0..<cap_value_t(cap_max_bits()) {
            var permitted = CAP_CLEAR
            guard cap_get_flag(caps, capability, CAP_PERMITTED, &permitted) == 0, permitted == CAP_SET else { continue }
            var list = [capability]
            _ = cap_set_flag(caps, CAP_EFFECTIVE, 1, &list, CAP_SET)
            _ = cap_set_flag(caps, CAP_INHERITABLE, 1, &list, CAP_SET)
            raised.append(capability)
        }
        guard !raised.isEmpty, cap_set_proc(caps) == 0 else { return [] }
        return raised.filter { cap_set_ambient($0, CAP_SET) == 0 }.map { Int32($0) }
    }
}
