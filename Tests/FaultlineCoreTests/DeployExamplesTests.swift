import Foundation
import Testing
import Yams

/// The deployment examples under `deploy/` parse, and say what their guides promise: the sidecar non-root with
/// NET_ADMIN only and its token from a Secret, the DaemonSet root with named capabilities and not privileged, the
/// systemd unit hardened and leaving the guard alive on stop, and every agent off loopback serving HTTPS.
@Suite struct DeployExamplesTests {
    static let deploy = ScenarioExamplesTests.root.appendingPathComponent("deploy")

    static func documents(_ relative: String) throws -> [[String: Any]] {
        let text = try String(contentsOf: deploy.appendingPathComponent(relative), encoding: .utf8)
        return try Yams.load_all(yaml: text).compactMap { $0 as? [String: Any] }
    }

    static func agentContainer(in documents: [[String: Any]], kind: String) throws -> [String: Any] {
        let workload = try #require(documents.first { $0["kind"] as? String == kind }, "no \(kind)")
        let spec = (((workload["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]) ?? [:]
        let containers = spec["containers"] as? [[String: Any]] ?? []
        return try #require(containers.first { ($0["image"] as? String)?.contains("faultline") == true }, "no faultline container in the \(kind)")
    }

    @Test(arguments: ["kubernetes/sidecar.yaml", "kubernetes/daemonset.yaml", "kubernetes/cronjob.yaml"])
    func everyDocumentParsesWithAKindAndAPIVersion(_ file: String) throws {
        let documents = try Self.documents(file)
        #expect(documents.count >= 2)
        for document in documents {
            #expect(document["apiVersion"] is String && document["kind"] is String, "\(file): \(document.keys.sorted())")
            #expect(((document["metadata"] as? [String: Any])?["name"] as? String)?.isEmpty == false)
        }
    }

    @Test func theSidecarIsNonRootWithNetAdminOnlyAndItsTokenFromTheSecret() throws {
        let documents = try Self.documents("kubernetes/sidecar.yaml")
        let agent = try Self.agentContainer(in: documents, kind: "Deployment")
        let security = agent["securityContext"] as? [String: Any] ?? [:]
        let capabilities = security["capabilities"] as? [String: Any] ?? [:]
        #expect(capabilities["drop"] as? [String] == ["ALL"])
        #expect(capabilities["add"] as? [String] == ["NET_ADMIN"])
        #expect(security["runAsUser"] as? Int == 65532)
        #expect(security["privileged"] as? Bool != true)
        // File capabilities need exec without no_new_privs.
        #expect(security["allowPrivilegeEscalation"] as? Bool == true)
        let env = agent["env"] as? [[String: Any]] ?? []
        let token = env.first { $0["name"] as? String == "FAULTLINE_TOKEN" }
        let reference = ((token?["valueFrom"] as? [String: Any])?["secretKeyRef"] as? [String: Any])?["name"] as? String
        #expect(reference != nil)
        #expect(documents.contains { $0["kind"] as? String == "Secret" && ($0["metadata"] as? [String: Any])?["name"] as? String == reference })
        let ports = (agent["ports"] as? [[String: Any]] ?? []).compactMap { $0["containerPort"] as? Int }
        #expect(ports == [7465])
        let liveness = (agent["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any]
        #expect(liveness?["path"] as? String == "/healthz")
    }

    @Test func theDaemonSetRunsOnTheHostWithNamedCapabilitiesNotPrivileged() throws {
        let documents = try Self.documents("kubernetes/daemonset.yaml")
        let daemonSet = try #require(documents.first { $0["kind"] as? String == "DaemonSet" })
        let pod = (((daemonSet["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any]) ?? [:]
        #expect(pod["hostNetwork"] as? Bool == true)
        #expect(pod["hostPID"] as? Bool == true)
        let agent = try Self.agentContainer(in: documents, kind: "DaemonSet")
        let security = agent["securityContext"] as? [String: Any] ?? [:]
        #expect(security["privileged"] as? Bool != true)
        #expect(Set((security["capabilities"] as? [String: Any])?["add"] as? [String] ?? [])
                == ["NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_PTRACE", "KILL", "DAC_OVERRIDE"])
        let mounts = (agent["volumeMounts"] as? [[String: Any]] ?? []).compactMap { $0["mountPath"] as? String }
        #expect(mounts.contains("/var/lib/faultline") && mounts.contains("/run/netns"))
    }

    @Test func theSystemdUnitIsHardenedAndLetsTheGuardFinish() throws {
        let text = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/faultline-agent.service"), encoding: .utf8)
        var settings: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && line.contains("=") {
            let parts = line.split(separator: "=", maxSplits: 1)
            settings[String(parts[0])] = String(parts[1])
        }
        #expect(settings["ExecStart"]?.hasPrefix("/usr/local/bin/faultline agent ") == true)
        #expect(settings["ProtectSystem"] == "strict")
        #expect(settings["StateDirectory"] == "faultline")
        #expect(settings["CapabilityBoundingSet"]?.split(separator: " ").contains("CAP_NET_ADMIN") == true)
        // KillMode=process or mixed would let systemd SIGKILL the guard while it reverts after a crash.
        #expect(settings["KillMode"] == nil || settings["KillMode"] == "control-group")
        #expect(settings["TimeoutStopSec"] != nil)
        // Descriptors for many connections and, beside them, for reverts (the default soft limit is 1024).
        #expect(Int(settings["LimitNOFILE"] ?? "") ?? 0 >= 65_536)
    }

    @Test("every example that listens off loopback serves HTTPS (the agent refuses plain HTTP there): a certificate and key from a mounted TLS secret, HTTPS probes",
          arguments: [("kubernetes/sidecar.yaml", "Deployment"), ("kubernetes/daemonset.yaml", "DaemonSet")])
    func kubernetesAgentsServeHTTPS(_ file: String, _ kind: String) throws {
        let documents = try Self.documents(file)
        let agent = try Self.agentContainer(in: documents, kind: kind)
        let args = agent["args"] as? [String] ?? []
        #expect(args.contains("0.0.0.0:7465") && !args.contains("--insecure-http"))
        let certificate = try #require(args.firstIndex(of: "--tls-cert").map { args[$0 + 1] })
        let key = try #require(args.firstIndex(of: "--tls-key").map { args[$0 + 1] })
        let mount = try #require((agent["volumeMounts"] as? [[String: Any]] ?? []).first { mount in
            (mount["mountPath"] as? String).map { certificate.hasPrefix($0 + "/") && key.hasPrefix($0 + "/") } == true
        }, "the certificate and key come from a mounted volume")
        let workload = try #require(documents.first { $0["kind"] as? String == kind })
        let volumes = (((workload["spec"] as? [String: Any])?["template"] as? [String: Any])?["spec"] as? [String: Any])?["volumes"] as? [[String: Any]] ?? []
        let secret = try #require(volumes.first { $0["name"] as? String == mount["name"] as? String }?["secret"] as? [String: Any])
        #expect(documents.contains { $0["kind"] as? String == "Secret" && $0["type"] as? String == "kubernetes.io/tls"
                && ($0["metadata"] as? [String: Any])?["name"] as? String == secret["secretName"] as? String })
        for probe in ["livenessProbe", "readinessProbe"] {
            #expect(((agent[probe] as? [String: Any])?["httpGet"] as? [String: Any])?["scheme"] as? String == "HTTPS", "\(probe)")
        }
    }

    @Test func theSystemdUnitAndTheImageServeHTTPSOffLoopback() throws {
        let unit = try String(contentsOf: Self.deploy.appendingPathComponent("systemd/faultline-agent.service"), encoding: .utf8)
        let start = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        #expect(start.contains("--listen 0.0.0.0:7465") && start.contains("--tls-cert ") && start.contains("--tls-key "))
        let dockerfile = try String(contentsOf: ScenarioExamplesTests.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let command = try #require(dockerfile.split(separator: "\n").first { $0.hasPrefix("CMD ") })
        #expect(command.contains("\"0.0.0.0:7465\"") && command.contains("\"--tls-cert\"") && command.contains("\"--tls-key\""))
        let health = try #require(dockerfile.split(separator: "\n").first { $0.hasPrefix("HEALTHCHECK ") })
        #expect(health.contains("https://127.0.0.1:7465"))
    }

    /// SPEC §4: the metric names the agent serves.
    static let metrics: Set<String> = ["faultline_faults_active", "faultline_fault_injections_total", "faultline_reverts_total",
                                       "faultline_revert_duration_seconds", "faultline_probe_results_total",
                                       "faultline_probe_latency_seconds", "faultline_runs_total", "faultline_aborts_total"]

    @Test func theGrafanaDashboardQueriesOnlyFaultlinesMetricsAndShowsItsAnnotations() throws {
        let data = try Data(contentsOf: Self.deploy.appendingPathComponent("grafana/faultline-dashboard.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = dashboard["panels"] as? [[String: Any]] ?? []
        #expect(panels.count >= 8)
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= panels.count)
        var used: Set<String> = []
        let metricName = try Regex("faultline_[a-z_]+")
        for expression in expressions {
            for name in expression.matches(of: metricName).map({ String(expression[$0.range]) }) {
                let metric = name.hasSuffix("_bucket") ? String(name.dropLast(7)) : name
                #expect(Self.metrics.contains(metric), "unknown metric '\(name)' in \(expression)")
                used.insert(metric)
            }
        }
        #expect(used == Self.metrics, "every metric has a panel; missing: \(Self.metrics.subtracting(used))")
        let annotations = (dashboard["annotations"] as? [String: Any])?["list"] as? [[String: Any]] ?? []
        #expect(annotations.contains { (($0["target"] as? [String: Any])?["tags"] as? [String]) == ["faultline"] })
    }
}
