import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Holds a network namespace for a run with a bind mount of its nsfs file (as `ip netns` does), so the run's
/// commands enter exactly that namespace through the pin whatever becomes of the target's process, and finds a
/// pinned namespace again by its identity.
public enum NamespacePin {
    /// `NS_GET_NSTYPE`, `CLONE_NEWNET`.
    static let getNamespaceType: UInt = 0xb703
    static let networkNamespace: Int32 = 0x4000_0000

    /// The identity of the network namespace at `path`, or why it is not one.
    public static func identity(of path: String) -> Result<NamespaceIdentity, FaultlineError> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            return .failure(FaultlineError(.io, "cannot open \(path): \(String(cString: strerror(code)))"))
        }
        defer { close(fd) }
        // NS_GET_NSTYPE fails (ENOTTY) on anything but a namespace file.
        let type = ioctl(fd, getNamespaceType)
        guard type >= 0 else {
            return .failure(FaultlineError(.preflight, "\(path) is not a namespace file (like /proc/PID/ns/net or /run/netns/NAME)"))
        }
        guard type == networkNamespace else {
            return .failure(FaultlineError(.preflight, "\(path) is a namespace file but not a network namespace"))
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(FaultlineError(.io, "cannot stat \(path): \(String(cString: strerror(errno)))")) }
        return .success(NamespaceIdentity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)))
    }

    /// Pins `pin.source` at `pin.path` and checks it is still the namespace that was planned; throws, leaving no pin,
    /// when it cannot or when the target changed since.
    public static func create(_ pin: PinnedNamespace) throws(FaultlineError) {
        let directory = (pin.path as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw FaultlineError(.io, "cannot make \(directory) for the namespace pins", cause: "\(error)")
        }
        let fd = open(pin.path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw FaultlineError(.io, "cannot create the pin \(pin.path): \(String(cString: strerror(errno)))")
        }
        close(fd)
        guard mount(pin.source, pin.path, nil, UInt(MS_BIND), nil) == 0 else {
            let code = errno
            unlink(pin.path)
            throw FaultlineError(.io, "cannot pin \(pin.source) at \(pin.path) (mount --bind): \(String(cString: strerror(code)))"
                + (code == EPERM ? "; needs CAP_SYS_ADMIN" : ""))
        }
        switch identity(of: pin.path) {
        case .success(let found) where found == pin.identity:
            return
        case .success(let found):
            try? release(pin.path)
            throw FaultlineError(.preflight, "\(pin.source) is now namespace \(found), not the \(pin.identity) that was planned: the target changed; nothing was applied")
        case .failure(let error):
            try? release(pin.path)
            throw error
        }
    }

    /// Unmounts a pin and removes its file; a pin already gone is fine.
    public static func release(_ path: String) throws(FaultlineError) {
        if umount2(path, Int32(MNT_DETACH)) != 0, errno != EINVAL, errno != ENOENT {
            throw FaultlineError(.io, "cannot unmount the namespace pin \(path): \(String(cString: strerror(errno)))")
        }
        if unlink(path) != 0, errno != ENOENT {
            throw FaultlineError(.io, "cannot remove the namespace pin \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// This boot of the kernel (`/proc/sys/kernel/random/boot_id`).
    public static var bootID: String? {
        FileBytes.text("/proc/sys/kernel/random/boot_id")?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Where a pinned namespace stands now.
    public enum Whereabouts: Sendable, Equatable {
        /// The pin still holds it: enter through the pin.
        case pinned
        /// It cannot exist any more (the host rebooted since it was pinned): nothing in it can be left.
        case gone
        /// The pin no longer holds it in this boot (removed by hand): it may live on elsewhere, and a namespace
        /// found with the same number may be another one, so nothing is entered.
        case lost(String)
    }

    /// Where `pin`'s namespace stands. Never searches for it by number: the kernel reuses the numbers of freed
    /// namespaces, and a revert must never enter another one.
    public static func locate(_ pin: PinnedNamespace, currentBoot: String? = NamespacePin.bootID) -> Whereabouts {
        if case .success(let found) = identity(of: pin.path), found == pin.identity { return .pinned }
        if let then = pin.bootID, let now = currentBoot, then != now { return .gone }
        return .lost("the pin \(pin.path) no longer holds \(pin.source) (namespace \(pin.identity)): it was removed by hand")
    }
}
