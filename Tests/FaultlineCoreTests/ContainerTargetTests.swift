import FaultlineCore
import Foundation
import Testing

/// `target: {container: ...}`: read from YAML, found when the run starts, and planned inside the container.
@Suite struct ContainerTargetTests {
    static let yaml = """
        apiVersion: faultline/v1
        kind: Scenario
        metadata: {name: checkout-in-a-container}
        spec:
          maxDuration: 1m
          target: {container: checkout}
          faults:
            - {name: cut, type: drop, direction: ingress, from: {ports: [8080]}}
            - {name: stop-worker, type: pause-process, duration: 10s, match: {cmdline: "worker", pidFile: /run/worker.pid}}
            - {name: fill, type: disk-fill, path: /var/log, size: 10MiB}
            - {name: burn, type: cpu-stress, workers: 1, load: 50%}
            - {name: other, type: kill-process, target: {container: 3f2a1b9c, namespace: k8s.io}, match: {name: app}}
        """

    static let found = FoundContainer(runtime: .podman, socket: "/run/podman/podman.sock", id: "0123456789abcdef0123", name: "checkout",
                                      pid: 4242, startTime: 99, pidNamespace: 4_026_532_001,
                                      cgroups: ["/sys/fs/cgroup/cpu,cpuacct/libpod-0123", "/sys/fs/cgroup/memory/libpod-0123"])

    @Test func theTargetIsReadWithItsRuntimeAndNamespace() throws {
        let scenario = try ScenarioLoader.load(yaml: Self.yaml, file: "c.yaml")
        #expect(scenario.spec.target == .container(ContainerRef(name: "checkout")))
        // A containerd namespace says the runtime.
        #expect(scenario.spec.faults[4].target == .container(ContainerRef(name: "3f2a1b9c", runtime: .containerd, namespace: "k8s.io")))
        #expect(scenario.containers.map(\.name) == ["checkout", "3f2a1b9c"])
        // Not found yet: no namespace file, so nothing can enter it.
        #expect(!scenario.spec.target!.namespacePath.hasPrefix("/"))
    }

    @Test func aFoundContainerConfinesEveryFault() throws {
        let scenario = try ScenarioLoader.load(yaml: Self.yaml, file: "c.yaml")
        let resolved = scenario.withContainers([ContainerRef(name: "checkout"): Self.found])
        #expect(resolved.spec.target?.namespacePath == "/proc/4242/ns/net")
        #expect("\(resolved.spec.target!)" == "container checkout (podman 0123456789ab, pid 4242)")
        guard case .pauseProcess(let pause) = resolved.spec.faults[1].action else { Issue.record("not a pause"); return }
        #expect(pause.match.container == ContainerScope(container: "container checkout (podman 0123456789ab, pid 4242)", pidNamespace: 4_026_532_001, root: "/proc/4242/root"))
        // The one not found stays as written, and its fault is not confined to anything.
        #expect(resolved.spec.faults[4].target?.container?.found == nil)
        guard case .killProcess(let kill) = resolved.spec.faults[4].action else { Issue.record("not a kill"); return }
        #expect(kill.match.container == nil)
    }

    @Test func thePlanActsInsideTheContainer() throws {
        let scenario = try ScenarioLoader.load(yaml: Self.yaml, file: "c.yaml").withContainers([ContainerRef(name: "checkout"): Self.found])
        var facts = HostFacts()
        facts.executable = "/usr/local/bin/faultline"
        facts.containerPaths["fill"] = "/proc/4242/root/var/log"
        facts.containerProblems["container 3f2a1b9c"] = "no container '3f2a1b9c' in containerd namespace k8s.io through containerd at /run/containerd/containerd.sock"
        let plan = Planner(facts: facts).plan(scenario, runID: "c0c0c0c0")
        let faults = Dictionary(uniqueKeysWithValues: plan.faults.map { ($0.name, $0) })
        #expect(faults["fill"]?.inject == [.call(.fill(file: "/proc/4242/root/var/log/.faultline-fill-c0c0c0c0-fill", fill: DiskFillFault(path: "/proc/4242/root/var/log", amount: .size(ByteCount(bytes: 10 << 20)), owner: ProcessIdentity(pid: 4242, startTime: 99, name: "checkout"))))])
        #expect(faults["burn"]?.inject == [.start(["/usr/local/bin/faultline", "hog", "cpu", "--workers", "1", "--load", "50", "--duration", "1m",
                                                   "--cgroup", "/sys/fs/cgroup/cpu,cpuacct/libpod-0123", "--cgroup", "/sys/fs/cgroup/memory/libpod-0123"], .cpuHog)])
        #expect(faults["cut"]?.target == "container checkout (podman 0123456789ab, pid 4242)")
        #expect(plan.notes.contains { $0.hasPrefix("checkout → podman container 0123456789ab (found through /run/podman/podman.sock) → pid 4242 → network namespace /proc/4242/ns/net, pid namespace pid:[4026532001], root /proc/4242/root") }, "\(plan.notes)")
        // The container not found stops the run, and says why.
        #expect(plan.problems.map(\.description) == ["fault 'other': container 3f2a1b9c was not found: no container '3f2a1b9c' in containerd namespace k8s.io through containerd at /run/containerd/containerd.sock"])
    }

    @Test func aDiskFillWhosePathIsNotFoundInTheContainerIsAProblem() throws {
        let scenario = try ScenarioLoader.load(yaml: Self.yaml, file: "c.yaml").withContainers([ContainerRef(name: "checkout"): Self.found])
        let plan = Planner(facts: HostFacts()).plan(scenario, runID: "c0c0c0c0")
        #expect(plan.problems.map(\.description).contains("fault 'fill': '/var/log' could not be found inside container checkout (podman 0123456789ab, pid 4242)"), "\(plan.problems)")
    }

    @Test func aConfinedMatchSeesOnlyTheContainersProcessesAndItsPIDs() {
        func process(_ pid: Int32, _ inner: Int32?, namespace: UInt64, _ name: String) -> ProcessRecord {
            ProcessRecord(pid: pid, parentPID: 1, name: name, arguments: [name], uid: 0, user: "root", state: "S", startTime: 1,
                          pidNamespace: namespace, namespacePID: inner)
        }
        let processes = [process(300, nil, namespace: 1, "app"), process(4242, 1, namespace: 7, "app"), process(4250, 9, namespace: 7, "app")]
        var match = ProcessMatch(name: "app")
        #expect(match.select(from: processes, pidFromFile: nil, protected: []).map(\.pid) == [300, 4242, 4250])
        match.container = ContainerScope(container: "container app", pidNamespace: 7, root: "/proc/4242/root")
        #expect(match.select(from: processes, pidFromFile: nil, protected: []).map(\.pid) == [4242, 4250])
        // `pid` is the container's own view: 1 is its main process, not the host's init.
        match.pid = 1
        #expect(match.select(from: processes, pidFromFile: nil, protected: []).map(\.pid) == [4242])
        #expect(processes[2].identity.description == "app[4250, 9 in its container]")
    }
}

/// `target: {pod: ...}`: read, and expanded into one fault per pod hit.
@Suite struct PodTargetTests {
    @Test func aPodTargetIsReadWithItsContainerAndMode() throws {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: pods}
            spec:
              maxDuration: 1m
              target: {pod: {namespace: shop, labels: {app: checkout}}, container: web, mode: {percent: 50%}}
              faults:
                - {name: cut, type: drop}
                - {name: one, type: drop, target: {pod: {namespace: shop, name: checkout-0}}}
            """, file: "p.yaml")
        #expect(scenario.spec.target == .pod(PodRef(namespace: "shop", labels: ["app": "checkout"], container: "web", mode: .percent(Percent(50)))))
        #expect(scenario.spec.faults[1].target == .pod(PodRef(namespace: "shop", name: "checkout-0")))
        #expect(scenario.namesContainers)
        #expect(PodMode.percent(Percent(50)).count(of: 3) == 1)
        #expect(PodMode.percent(Percent(10)).count(of: 3) == 1)
        #expect(PodMode.fixed(5).count(of: 3) == 3)
        #expect(PodMode.one.count(of: 0) == 0)
    }

    @Test func eachPodHitIsOneFault() throws {
        let scenario = try ScenarioLoader.load(yaml: """
            apiVersion: faultline/v1
            kind: Scenario
            metadata: {name: pods}
            spec:
              maxDuration: 1m
              target: {pod: {namespace: shop, labels: {app: checkout}}, container: web, mode: all}
              faults:
                - {name: freeze, type: pause-process, match: {name: web}}
            """, file: "p.yaml")
        let pods = ["shop/checkout-a", "shop/checkout-b"].enumerated().map { index, pod in
            var found = FoundContainer(runtime: .containerd, socket: "/run/containerd/containerd.sock", id: "web\(index)", name: "web\(index)",
                                       pid: Int32(100 + index), pidNamespace: UInt64(7 + index))
            found.pod = pod
            return found
        }
        let expanded = scenario.withPods([scenario.pods[0]: pods]).withContainers([:])
        #expect(expanded.spec.faults.map(\.name.rawValue) == ["freeze-1", "freeze-2"])
        #expect(expanded.spec.faults.map { $0.target?.namespacePath } == ["/proc/100/ns/net", "/proc/101/ns/net"])
        #expect("\(expanded.spec.faults[1].target!)" == "container web1 of pod shop/checkout-b (containerd web1, pid 101)")
        guard case .pauseProcess(let pause) = expanded.spec.faults[1].action else { Issue.record("not a pause"); return }
        #expect(pause.match.container?.pidNamespace == 8)
        // The probes run in the first pod.
        #expect(expanded.spec.target?.namespacePath == "/proc/100/ns/net")
        // Not found: as written, and the plan says why.
        var facts = HostFacts()
        facts.containerProblems[scenario.pods[0].description] = "no running pod is pods in shop with app=checkout container web on this node"
        let plan = Planner(facts: facts).plan(scenario, runID: "p0p0p0p0")
        #expect(plan.problems.map(\.message) == ["pods in shop with app=checkout container web (all) was not found: no running pod is pods in shop with app=checkout container web on this node"])
    }
}
