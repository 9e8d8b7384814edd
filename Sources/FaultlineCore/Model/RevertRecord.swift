/// What undoes one applied fault, written to the journal before the step it undoes, so that any
/// process (the runner, the guard, `faultline recover`) can revert from it alone.
public enum RevertRecord: Sendable, Hashable, Codable {
    /// Network faults: the revert argv, and the state that shows the fault is in place or gone.
    case commands(revert: [[String]], checks: [StateCheck])
    /// pause-process: the stopped processes, to resume.
    case resume([ProcessIdentity])
    /// disk-fill: the file to remove.
    case removeFile(String)
    /// cpu-stress and memory-stress: the hog process to stop.
    case stopProcess(ProcessIdentity)
    /// kill-process: nothing can be undone; the processes that were signalled.
    case signalled([ProcessIdentity])
    /// Several records undone in order (the nfqueue engine: its rules, then its delayer process).
    indirect case steps([RevertRecord])
    /// A record whose commands enter a pinned network namespace: reverted only in that very namespace (found by its
    /// identity), and counted as undone when the namespace no longer exists.
    indirect case inNamespace(PinnedNamespace, RevertRecord)
}

/// A target network namespace held for the whole run by a bind mount (the pin), with the identity it had when the
/// run was planned: inject and revert enter it through the pin, so a target process that exits (or whose pid is
/// reused) cannot send them elsewhere.
public struct PinnedNamespace: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The pin: a file the namespace is bind-mounted on.
    public var path: String
    /// What was pinned: `/run/netns/app`, `/proc/123/ns/net`.
    public var source: String
    public var identity: NamespaceIdentity
    /// The kernel's boot id when it was pinned: after a reboot every namespace of before is gone.
    public var bootID: String?

    public init(path: String, source: String, identity: NamespaceIdentity, bootID: String? = nil) {
        self.path = path
        self.source = source
        self.identity = identity
        self.bootID = bootID
    }

    public var description: String { "\(source) (namespace \(identity), pinned at \(path))" }
}

/// A namespace for good: the device and inode of its nsfs file (`stat -L /proc/PID/ns/net`).
public struct NamespaceIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// `net:[4026532312]`, as the kernel names it.
    public var description: String { "net:[\(inode)]" }
}

extension RevertRecord {
    /// The same record without what acts inside a namespace (its commands): what is left to undo once the
    /// namespace is gone (a delayer process, say); nil when nothing is.
    public var outsideNamespace: RevertRecord? {
        switch self {
        case .commands: return nil
        case .steps(let steps):
            let left = steps.compactMap(\.outsideNamespace)
            return left.isEmpty ? nil : .steps(left)
        case .inNamespace(_, let inner): return inner.outsideNamespace
        default: return self
        }
    }
}

/// Whether a fault is in place on the host.
public enum FaultState: Sendable, Hashable, Codable {
    case active
    case reverted
    /// Part of it is in place: what is left, in words.
    case partial(String)
}
