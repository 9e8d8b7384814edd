#if canImport(Glibc)
import Glibc
#endif

/// What says a file changed, for files the agent reads again when they do (its TLS pair, its tokens file): device,
/// inode, size and modification time, through symlinks (a Kubernetes secret volume swaps one). Nil when the file
/// cannot be looked at.
struct FileStamp: Equatable {
    let values: [Int]

    init?(_ path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        values = [Int(info.st_dev), Int(info.st_ino), Int(info.st_size), info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
    }
}
