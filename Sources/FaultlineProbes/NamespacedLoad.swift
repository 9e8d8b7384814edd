import AsyncHTTPClient
import FaultlineCore
import FaultlineSystem
import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Load from inside a target network namespace without a helper process per request: an event loop whose one
/// thread has entered the namespace (setns applies to the calling thread only), an HTTP client on it, and a task
/// executor on that thread. A request runs on the thread from its start, so AsyncHTTPClient opens its sockets there
/// — whether it connects on the calling thread (an address) or on the event loop (a name) — and they belong to the
/// namespace. Host names are still resolved as on this host.
final class NamespacedLoad: Sendable {
    let group: MultiThreadedEventLoopGroup
    let client: HTTPClient
    let executor: LoopTaskExecutor

    /// Enters `path` (a network namespace file) on a new event-loop thread.
    init(path: String) throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        if let failure = try loop.submit({ ThreadNamespace.enter(path) }).wait() {
            try? group.syncShutdownGracefully()
            throw ProbeFailure(failure)
        }
        self.group = group
        client = HTTPClient(eventLoopGroupProvider: .shared(group), configuration: ProbeExecutor.loadConfiguration)
        executor = LoopTaskExecutor(loop: loop)
    }

    func shutdown() async {
        try? await client.shutdown()
        try? await group.shutdownGracefully()
    }
}

/// Runs a task's jobs on one event loop's thread.
final class LoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        loop.execute { job.runSynchronously(on: executor) }
    }
}

/// The namespaced load of one run, made at its first use and shut down with the run.
public final class NamespacedLoadCache: Sendable {
    private let made = Mutex<Result<NamespacedLoad, ProbeFailure>?>(nil)

    public init() {}

    func load(for target: NetnsTarget) -> Result<NamespacedLoad, ProbeFailure> {
        made.withLock { made in
            if let made { return made }
            let result: Result<NamespacedLoad, ProbeFailure>
            do { result = .success(try NamespacedLoad(path: target.namespacePath)) } catch {
                result = .failure(error as? ProbeFailure ?? ProbeFailure("\(error)"))
            }
            made = result
            return result
        }
    }

    public func shutdown() async {
        let load = made.withLock { made -> NamespacedLoad? in
            defer { made = nil }
            if case .success(let load)? = made { return load }
            return nil
        }
        await load?.shutdown()
    }
}
