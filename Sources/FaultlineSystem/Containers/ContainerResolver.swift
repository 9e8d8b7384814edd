import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Finds the containers a scenario names through their runtime's own API on its unix socket (the Docker Engine API
/// of dockerd and of `podman system service`; containerd through `ctr`), and reads from the kernel what a run acts
/// on: the main process, its PID namespace and its cgroups. Read only: it changes nothing.
public struct ContainerResolver: Sendable {
    /// The socket to ask (`--runtime-socket`, `FAULTLINE_RUNTIME_SOCKET`); nil: the usual places.
    public var socket: String?
    let runner: any CommandRunner
    let procRoot: String

    public init(socket: String? = nil, runner: any CommandRunner = SubprocessRunner(), procRoot: String = "/proc") {
        self.socket = socket
        self.runner = runner
        self.procRoot = procRoot
    }

    /// Where each runtime's socket usually is, in the order they are asked.
    public static let usualSockets: [(runtime: ContainerRuntime, path: String)] = [
        (.docker, "/run/docker.sock"), (.docker, "/var/run/docker.sock"),
        (.podman, "/run/podman/podman.sock"),
        (.containerd, "/run/containerd/containerd.sock"), (.containerd, "/run/k3s/containerd/containerd.sock"),
    ]

    /// The environment variable that names the socket when `--runtime-socket` is not given.
    public static let environmentVariable = "FAULTLINE_RUNTIME_SOCKET"

    /// What finding a scenario's containers and pods gave.
    public struct Resolution: Sendable {
        /// The scenario with what was found filled in.
        public var scenario: Scenario
        /// Why each container or pod target that was not found could not be (by its description, `container NAME`).
        public var problems: [String: String]
        /// The pod targets (by description) no running pod of this node matches: nothing to do here, which an agent
        /// of a fleet says apart from a failure.
        public var absentPods: Set<String>
    }

    /// The scenario with its containers and pods found, and why each one that was not could not be.
    public func resolve(_ scenario: Scenario) async -> Resolution {
        var found: [ContainerRef: FoundContainer] = [:]
        var resolution = scenario.pods.isEmpty ? Resolution(scenario: scenario, problems: [:], absentPods: []) : await resolvePods(scenario)
        for ref in resolution.scenario.containers where ref.found == nil {
            switch await find(ref) {
            case .success(let container): found[ref] = container
            case .failure(let error): resolution.problems[ref.description] = error.message
            }
        }
        resolution.scenario = resolution.scenario.withContainers(found)
        return resolution
    }

    /// The sockets to ask for `ref`, with the runtime each speaks (nil: the Docker API of docker or podman, told apart by asking).
    func candidates(for ref: ContainerRef) -> [(runtime: ContainerRuntime?, path: String)] {
        if let socket {
            let runtime = ref.runtime ?? (socket.split(separator: "/").last?.contains("containerd") == true ? .containerd : nil)
            return [(runtime, socket)]
        }
        var seen = Set<String>()
        return Self.usualSockets.filter { candidate in
            guard ref.runtime == nil || ref.runtime == candidate.runtime else { return false }
            // /var/run is usually a link to /run: ask each socket once.
            let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/var/run")) == "/run" ? candidate.path.replacingOccurrences(of: "/var/run/", with: "/run/") : candidate.path
            return FileManager.default.fileExists(atPath: candidate.path) && seen.insert(real).inserted
        }.map { ($0.runtime, $0.path) }
    }

    /// The container `ref` names, running, with its main process, PID namespace and cgroups.
    public func find(_ ref: ContainerRef) async -> Result<FoundContainer, FaultlineError> {
        let sockets = candidates(for: ref)
        guard !sockets.isEmpty else {
            let looked = Self.usualSockets.filter { ref.runtime == nil || ref.runtime == $0.runtime }.map(\.path)
            return .failure(FaultlineError(.preflight, "no container runtime socket found (looked for \(looked.joined(separator: ", "))): give --runtime-socket PATH or set \(Self.environmentVariable)"))
        }
        var tried: [String] = []
        var failures: [String] = []
        for (runtime, path) in sockets {
            let answer: Result<FoundContainer?, FaultlineError> = if runtime == .containerd {
                await askContainerd(ref, socket: path)
            } else {
                await askDockerAPI(ref, socket: path, runtime: runtime)
            }
            switch answer {
            case .success(var container?):
                if let problem = readKernel(&container) { return .failure(FaultlineError(.preflight, problem)) }
                return .success(container)
            case .success(nil):
                tried.append("\(runtime?.rawValue ?? "the runtime") at \(path)")
            case .failure(let error):
                // A socket that does not answer (a stale one) does not hide the others.
                failures.append(error.message)
            }
        }
        if tried.isEmpty, failures.count == 1 { return .failure(FaultlineError(.preflight, failures[0])) }
        return .failure(FaultlineError(.preflight, "no container '\(ref.name)'\(ref.namespace.map { " in containerd namespace \($0)" } ?? "")"
            + (tried.isEmpty ? "" : " through \(tried.joined(separator: " or "))") + (failures.isEmpty ? "" : "; \(failures.joined(separator: "; "))")))
    }

    // MARK: The runtimes

    /// `GET /containers/NAME/json` of the Docker Engine API (dockerd, or podman's compatible service).
    func askDockerAPI(_ ref: ContainerRef, socket: String, runtime: ContainerRuntime?) async -> Result<FoundContainer?, FaultlineError> {
        struct Inspect: Decodable {
            struct State: Decodable {
                var Pid: Int32?
                var Running: Bool?
                var Status: String?
            }
            var Id: String
            var Name: String?
            var State: State?
        }
        let response: UnixSocketHTTP.Response
        do { response = try await UnixSocketHTTP.get(socket: socket, path: "/containers/\(ref.name)/json") } catch {
            return .failure(FaultlineError(.preflight, "cannot ask \(runtime?.rawValue ?? "the container runtime") at \(socket): \(error.message)"))
        }
        if response.status == 404 { return .success(nil) }
        guard response.status == 200 else {
            let message = (try? JSONDecoder().decode([String: String].self, from: response.body))?["message"] ?? String(decoding: response.body.prefix(200), as: UTF8.self)
            return .failure(FaultlineError(.preflight, "\(socket) answered \(response.status) for container '\(ref.name)': \(message)"))
        }
        guard let inspect = try? JSONDecoder().decode(Inspect.self, from: response.body) else {
            return .failure(FaultlineError(.preflight, "\(socket) described container '\(ref.name)' in a form Faultline cannot read"))
        }
        guard inspect.State?.Running == true, let pid = inspect.State?.Pid, pid > 0 else {
            return .failure(FaultlineError(.preflight, "container '\(ref.name)' is not running (\(inspect.State?.Status ?? "no state")): start it first"))
        }
        let name = inspect.Name.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? ref.name
        let kind: ContainerRuntime = if let runtime { runtime } else { await dockerOrPodman(socket) }
        return .success(FoundContainer(runtime: kind, socket: socket, id: inspect.Id, name: name, pid: pid))
    }

    /// Which engine serves the Docker API at `socket`: podman's `GET /_ping` sends Libpod-Api-Version (its
    /// /version takes half a second: it gathers the host's details).
    func dockerOrPodman(_ socket: String) async -> ContainerRuntime {
        guard let ping = try? await UnixSocketHTTP.get(socket: socket, path: "/_ping") else { return .docker }
        return ping.header("Libpod-Api-Version") != nil || ping.header("Server")?.hasPrefix("Libpod") == true ? .podman : .docker
    }

    /// `ctr task list` in the container's namespace: containerd names containers by id.
    func askContainerd(_ ref: ContainerRef, socket: String) async -> Result<FoundContainer?, FaultlineError> {
        let namespace = ref.namespace ?? "default"
        let result: CommandResult
        do { result = try await runner.run(["ctr", "--address", socket, "--namespace", namespace, "task", "list"]) } catch {
            return .failure(FaultlineError(.preflight, "cannot ask containerd at \(socket): \(error.message) (is ctr installed?)"))
        }
        guard result.succeeded else {
            return .failure(FaultlineError(.preflight, "ctr at \(socket) failed: \(result.standardError.trimmingCharacters(in: .whitespacesAndNewlines))"))
        }
        let tasks = Self.tasks(fromCtr: result.standardOutput)
        guard let task = tasks.first(where: { $0.id == ref.name }) else { return .success(nil) }
        guard task.status == "RUNNING", task.pid > 0 else {
            return .failure(FaultlineError(.preflight, "container '\(ref.name)' is not running (\(task.status.lowercased())): start it first"))
        }
        return .success(FoundContainer(runtime: .containerd, socket: socket, id: task.id, name: task.id, pid: task.pid))
    }

    /// The rows of `ctr task list`: TASK PID STATUS.
    static func tasks(fromCtr text: String) -> [(id: String, pid: Int32, status: String)] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard words.count >= 3, let pid = Int32(words[1]) else { return nil }
            return (String(words[0]), pid, String(words[2]))
        }
    }

    // MARK: The kernel's view

    /// Its main process's start time, PID namespace and cgroups; why not, when they cannot be read.
    func readKernel(_ container: inout FoundContainer) -> String? {
        let table = ProcessTable(procRoot: procRoot)
        guard let process = table.read(container.pid) else {
            return "container '\(container.name)' has pid \(container.pid), which this host does not see (run Faultline in the host's PID namespace: hostPID, --pid host)"
        }
        container.startTime = process.startTime
        guard let namespace = process.pidNamespace else {
            return "cannot read the PID namespace of container '\(container.name)' (/proc/\(container.pid)/ns/pid): run as root, or with CAP_SYS_PTRACE"
        }
        // A container in this host's PID namespace (--pid host, hostPID) cannot confine process faults.
        var own = stat(), host = stat()
        let shared = (stat("\(procRoot)/self/ns/pid", &own) == 0 && UInt64(own.st_ino) == namespace)
            || (stat("\(procRoot)/1/ns/pid", &host) == 0 && UInt64(host.st_ino) == namespace)
        container.pidNamespace = shared ? nil : namespace
        let mounts = FileBytes.text("\(procRoot)/self/mountinfo") ?? ""
        let groups = FileBytes.text("\(procRoot)/\(container.pid)/cgroup") ?? ""
        container.cgroups = Self.cgroupDirectories(cgroup: groups, mountinfo: mounts).filter { FileManager.default.fileExists(atPath: $0) }
        return nil
    }

    /// The directories of a process's cgroups that stress acts through (cpu, cpuacct, cpuset, memory; the unified
    /// hierarchy), from its /proc/PID/cgroup and this host's mountinfo.
    static func cgroupDirectories(cgroup: String, mountinfo: String) -> [String] {
        // Mount point and root of each hierarchy: the v1 ones by their controllers, the unified one by "".
        var hierarchies: [Set<Substring>: (point: String, root: String)] = [:]
        for line in mountinfo.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let before = halves[0].split(separator: " ")
            let after = halves[1].split(separator: " ")
            guard before.count >= 5, after.count >= 3 else { continue }
            let root = unescape(before[3]), point = unescape(before[4])
            switch after[0] {
            case "cgroup2": hierarchies[[], default: (point, root)] = hierarchies[[]] ?? (point, root)
            case "cgroup":
                let controllers = Set(after[2].split(separator: ",").filter { !["rw", "ro"].contains($0) && !$0.contains("=") && !$0.hasPrefix("no") && $0 != "clone_children" && $0 != "xattr" })
                // A named v1 hierarchy (name=systemd) has no controllers: not the unified one.
                if !controllers.isEmpty, hierarchies[controllers] == nil { hierarchies[controllers] = (point, root) }
            default: continue
            }
        }
        var result: [String] = []
        for line in cgroup.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = Set(fields[1].split(separator: ","))
            let wanted = controllers.isEmpty ? fields[0] == "0" : !controllers.isDisjoint(with: ["cpu", "cpuacct", "cpuset", "memory"])
            guard wanted, let mount = hierarchies[controllers] else { continue }
            var path = String(fields[2])
            guard !path.split(separator: "/").contains("..") else { continue }
            if mount.root != "/", path == mount.root || path.hasPrefix(mount.root + "/") { path = String(path.dropFirst(mount.root.count)) }
            if path.isEmpty { path = "/" }
            let directory = mount.point + (path == "/" ? "" : path)
            if !result.contains(directory) { result.append(directory) }
        }
        return result
    }

    /// mountinfo's octal escapes (`\040` for a space).
    static func unescape(_ text: Substring) -> String {
        guard text.contains("\\") else { return String(text) }
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "\\"), let end = utf8.index(index, offsetBy: 4, limitedBy: utf8.endIndex),
               let value = UInt8(String(decoding: utf8[utf8.index(after: index)..<end], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index = end
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

// MARK: Pods

extension ContainerResolver {
    /// The kubelet's labels on what containerd runs for a pod.
    enum KubeletLabel {
        static let kind = "io.cri-containerd.kind"
        static let podName = "io.kubernetes.pod.name"
        static let podNamespace = "io.kubernetes.pod.namespace"
        static let podUID = "io.kubernetes.pod.uid"
        static let containerName = "io.kubernetes.container.name"
        /// cri-dockerd's (and dockershim's) mark of a sandbox (`podsandbox`) or a container (`container`).
        static let dockerType = "io.kubernetes.docker.type"
    }

    /// One container of containerd's `k8s.io` namespace and its labels.
    struct LabelledContainer: Sendable, Hashable {
        var id: String
        var labels: [String: String]
    }

    /// The pods `ref` selects among `containers` (their sandboxes, by pod name), and for each the container to act
    /// on: the named one (running, if several: the latest) or the sandbox.
    static func select(_ ref: PodRef, among containers: [LabelledContainer], running: Set<String>) -> [(pod: String, id: String?)] {
        let sandboxes = containers.filter { c in
            c.labels[KubeletLabel.kind] == "sandbox" && c.labels[KubeletLabel.podNamespace] == ref.namespace
                && (ref.name.map { c.labels[KubeletLabel.podName] == $0 } ?? true)
                && (ref.labels ?? [:]).allSatisfy { c.labels[$0.key] == $0.value }
                && running.contains(c.id)
        }.sorted { ($0.labels[KubeletLabel.podName] ?? "") < ($1.labels[KubeletLabel.podName] ?? "") }
        return sandboxes.map { sandbox in
            let pod = "\(ref.namespace)/\(sandbox.labels[KubeletLabel.podName] ?? sandbox.id)"
            guard let name = ref.container else { return (pod, sandbox.id) }
            let id = containers.first { c in
                c.labels[KubeletLabel.kind] == "container" && c.labels[KubeletLabel.containerName] == name
                    && c.labels[KubeletLabel.podUID] == sandbox.labels[KubeletLabel.podUID] && running.contains(c.id)
            }?.id
            return (pod, id)
        }
    }

    /// The containers of each pod target, as many as its mode says, chosen at random among the pods that match;
    /// why, for those that cannot be found.
    public func resolvePods(_ scenario: Scenario) async -> Resolution {
        var chosen: [PodRef: [FoundContainer]] = [:]
        var problems: [String: String] = [:]
        var absent: Set<String> = []
        for ref in scenario.pods {
            switch await findPods(ref) {
            case .success(let found) where found.isEmpty:
                absent.insert(ref.description)
                problems[ref.description] = "no running pod is \(ref.description.replacingOccurrences(of: " (\(ref.mode))", with: "")) on this node (\(podSocket.map(Self.podSource) ?? "no runtime"))"
            case .success(let found): chosen[ref] = found
            case .failure(let error): problems[ref.description] = error.message
            }
        }
        return Resolution(scenario: scenario.withPods(chosen), problems: problems, absentPods: absent)
    }

    /// The socket pods are found through: the node's containerd, else a Docker API (dockerd with cri-dockerd).
    var podSocket: (runtime: ContainerRuntime?, path: String)? {
        let sockets = candidates(for: ContainerRef(name: "pod")).filter { $0.runtime != .podman }
        return sockets.first { $0.runtime == .containerd } ?? sockets.first
    }

    /// Where pods were looked for, for messages.
    static func podSource(_ socket: (runtime: ContainerRuntime?, path: String)) -> String {
        socket.runtime == .containerd ? "containerd at \(socket.path), namespace k8s.io" : "the Docker API at \(socket.path)"
    }

    /// The pods' containers `ref` takes on this node (none: no running pod matches), or why they cannot be found.
    func findPods(_ ref: PodRef) async -> Result<[FoundContainer], FaultlineError> {
        guard let socket = podSocket else {
            let looked = Self.usualSockets.filter { $0.runtime != .podman }.map(\.path)
            return .failure(FaultlineError(.preflight, "no containerd or Docker socket found (looked for \(looked.joined(separator: ", "))): give --runtime-socket PATH or set \(Self.environmentVariable)"))
        }
        let listed = socket.runtime == .containerd ? await listContainerd(namespace: ref.namespace, socket: socket.path)
            : await listDockerAPI(namespace: ref.namespace, socket: socket.path)
        let containers: [LabelledContainer]
        let running: Set<String>
        switch listed {
        case .success(let found): (containers, running) = found
        case .failure(let error): return .failure(error)
        }
        let matches = Self.select(ref, among: containers, running: running)
        guard !matches.isEmpty else { return .success([]) }
        if let missing = matches.first(where: { $0.id == nil }) {
            return .failure(FaultlineError(.preflight, "pod \(missing.pod) has no running container '\(ref.container ?? "")'"))
        }
        var result: [FoundContainer] = []
        for match in matches.shuffled().prefix(ref.mode.count(of: matches.count)) {
            let runtime = socket.runtime == .containerd ? ContainerRuntime.containerd : socket.runtime
            switch await find(ContainerRef(name: match.id!, runtime: runtime, namespace: runtime == .containerd ? "k8s.io" : nil)) {
            case .success(var found):
                found.pod = match.pod
                result.append(found)
            case .failure(let error): return .failure(error)
            }
        }
        return .success(result.sorted { ($0.pod ?? "") < ($1.pod ?? "") })
    }

    /// The containers of containerd's `k8s.io` namespace whose pod is in `namespace`, with their labels, and which
    /// of them run (`ctr`).
    func listContainerd(namespace: String, socket: String) async -> Result<([LabelledContainer], Set<String>), FaultlineError> {
        let ctr = ["ctr", "--address", socket, "--namespace", "k8s.io"]
        let listed: CommandResult
        let tasks: CommandResult
        do {
            listed = try await runner.run(ctr + ["containers", "list", "--quiet", "labels.\"\(KubeletLabel.podNamespace)\"==\(namespace)"])
            tasks = try await runner.run(ctr + ["task", "list"])
        } catch {
            return .failure(FaultlineError(.preflight, "cannot ask containerd at \(socket): \(error.message) (is ctr installed?)"))
        }
        guard listed.succeeded, tasks.succeeded else {
            return .failure(FaultlineError(.preflight, "ctr at \(socket) failed: \((listed.succeeded ? tasks : listed).standardError.trimmingCharacters(in: .whitespacesAndNewlines))"))
        }
        let running = Set(Self.tasks(fromCtr: tasks.standardOutput).filter { $0.status == "RUNNING" }.map(\.id))
        var containers: [LabelledContainer] = []
        for id in listed.standardOutput.split(separator: "\n").map(String.init) where !id.isEmpty {
            struct Info: Decodable { var Labels: [String: String]? }
            guard let info = try? await runner.run(ctr + ["containers", "info", id]), info.succeeded,
                  let decoded = try? JSONDecoder().decode(Info.self, from: Data(info.standardOutput.utf8)) else { continue }
            containers.append(LabelledContainer(id: id, labels: decoded.Labels ?? [:]))
        }
        return .success((containers, running))
    }

    /// The same through the Docker Engine API (a node whose kubelet runs pods through dockerd and cri-dockerd):
    /// `GET /containers/json` filtered by the pod namespace label. cri-dockerd marks sandboxes and containers with
    /// `io.kubernetes.docker.type` (`podsandbox`, `container`), read here as containerd's kinds.
    func listDockerAPI(namespace: String, socket: String) async -> Result<([LabelledContainer], Set<String>), FaultlineError> {
        struct Listed: Decodable {
            var Id: String
            var Labels: [String: String]?
            var State: String?
        }
        let filter = "{\"label\":[\"\(KubeletLabel.podNamespace)=\(namespace)\"]}"
        let query = filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let response: UnixSocketHTTP.Response
        do { response = try await UnixSocketHTTP.get(socket: socket, path: "/containers/json?all=1&filters=\(query)") } catch {
            return .failure(FaultlineError(.preflight, "cannot ask the Docker API at \(socket): \(error.message)"))
        }
        guard response.status == 200, let listed = try? JSONDecoder().decode([Listed].self, from: response.body) else {
            return .failure(FaultlineError(.preflight, "\(socket) answered \(response.status) to a list of pod \(namespace)'s containers: \(String(decoding: response.body.prefix(200), as: UTF8.self))"))
        }
        let kinds = ["podsandbox": "sandbox", "container": "container"]
        let containers = listed.map { entry in
            var labels = entry.Labels ?? [:]
            if labels[KubeletLabel.kind] == nil, let kind = labels[KubeletLabel.dockerType].flatMap({ kinds[$0] }) { labels[KubeletLabel.kind] = kind }
            return LabelledContainer(id: entry.Id, labels: labels)
        }
        return .success((containers, Set(listed.filter { $0.State == "running" }.map(\.Id))))
    }
}
