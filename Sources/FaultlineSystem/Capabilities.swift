import CLibcap
import FaultlineCore

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
