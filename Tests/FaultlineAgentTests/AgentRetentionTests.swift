@testable import FaultlineAgent
import FaultlineCore
import FaultlineJournal
import FaultlineTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A long-lived agent: finished runs leave memory, retention removes the oldest (never one whose revert failed
/// until it is acknowledged), and `GET /v1/runs` pages and filters. In-process with fake drivers; no root.
@Suite struct AgentRetentionTests {
    typealias Router = AgentRouterTests

    /// Runs `count` short runs one after another, each until the registry has retired it (and pruned); their ids,
    /// oldest first.
    static func runs(_ client: any TestClientProtocol, _ registry: RunRegistry, _ count: Int, name: String = "agent-router",
                     fault: String = "burn") async throws -> [String] {
        var ids: [String] = []
        for _ in 0..<count {
            let body = String(buffer: Router.scenario(duration: "20ms")).replacingOccurrences(of: "name: agent-router", with: "name: \(name)")
                .replacingOccurrences(of: "name: burn", with: "name: \(fault)")
            let id = try await Router.submit(client, ByteBuffer(string: body))
            _ = try await Router.finished(client, id)
            for _ in 0..<250 where registry.runs.withLock({ $0[id] != nil }) { try await Task.sleep(for: .milliseconds(10)) }
            ids.append(id)
        }
        return ids
    }

    static func page(_ client: any TestClientProtocol, _ query: String) async throws -> (ids: [String], next: String?, status: HTTPResponse.Status) {
        let response = try await client.execute(uri: "/v1/runs" + query, method: .get, headers: Router.headers(Router.read))
        guard response.status == .ok else { return ([], nil, response.status) }
        let json = try Router.json(response)
        let runs = json["runs"] as? [[String: Any]] ?? []
        return (runs.compactMap { $0["id"] as? String }, json["next"] as? String, response.status)
    }

    @Test("--keep-runs: the oldest finished runs go (folder, journal rows); a kept one is still served; nothing finished stays in memory")
    func keepRuns() async throws {
        try await Router.withAgent(retention: Retention(keepRuns: 3, keepFor: nil)) { client, registry in
            let ids = try await Self.runs(client, registry, 5)
            let listed = try await Self.page(client, "")
            #expect(listed.ids == Array(ids.suffix(3).reversed()), "the newest three, newest first: \(listed.ids) of \(ids)")
            let runs = registry.configuration.stateDirectory + "/runs/"
            for gone in ids.prefix(2) {
                #expect(!FileManager.default.fileExists(atPath: runs + gone), "run \(gone)'s folder was pruned")
                #expect(try registry.journal.run(gone) == nil, "run \(gone)'s journal row was pruned")
                #expect(try await client.execute(uri: "/v1/runs/\(gone)", method: .get, headers: Router.headers(Router.read)).status == .notFound)
            }
            let kept = try Router.json(try await client.execute(uri: "/v1/runs/\(ids[2])", method: .get, headers: Router.headers(Router.read)))
            #expect(kept["state"] as? String == "succeeded", "\(kept)")
            let report = try await client.execute(uri: "/v1/runs/\(ids[2])/report", method: .get, headers: Router.headers(Router.read))
            #expect(report.status == .ok)
            let events = String(buffer: try await client.execute(uri: "/v1/runs/\(ids[2])/events?follow=false", method: .get, headers: Router.headers(Router.read)).body)
            #expect(events.contains("event: inject\n") && events.contains("event: end\n"), "\(events)")
            #expect(registry.runs.withLock { $0.isEmpty }, "finished runs are not kept in memory as runs")
            #expect(registry.finished.withLock { $0.count } == 3)
        }
    }

    @Test("a run whose revert failed is never pruned until 'recover --forget' acknowledges it")
    func failedRevertStays() async throws {
        try await Router.withAgent(scripts: ["stuck": .init(revertFails: "device busy")], retention: Retention(keepRuns: 1, keepFor: nil)) { client, registry in
            let stuck = try await Self.runs(client, registry, 1, fault: "stuck")[0]
            let failed = try Router.json(try await client.execute(uri: "/v1/runs/\(stuck)", method: .get, headers: Router.headers(Router.read)))
            #expect(failed["exitCode"] as? Int == 4, "\(failed)")
            let later = try await Self.runs(client, registry, 2)
            let listed = try await Self.page(client, "").ids
            #expect(listed == [later[1], stuck], "the failed run stays beside the newest: \(listed)")
            _ = try registry.journal.forget(runID: stuck, fault: nil, note: "cleaned by hand")
            let another = try await Self.runs(client, registry, 1)
            let after = try await Self.page(client, "").ids
            #expect(after == another, "acknowledged, it goes at the next prune: \(after)")
            #expect(!FileManager.default.fileExists(atPath: registry.configuration.stateDirectory + "/runs/" + stuck))
        }
    }

    @Test("GET /v1/runs pages newest first with a cursor and filters by state and scenario; bad parameters are 400; a restart lists the same")
    func pages() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-agent-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ids = try await Router.withAgent(directory: directory) { client, registry in
            let ids = try await Self.runs(client, registry, 3, name: "alpha") + (try await Self.runs(client, registry, 2, name: "beta"))
            var seen: [String] = []
            var after = ""
            var pages = 0
            while true {
                let page = try await Self.page(client, "?limit=2" + after)
                #expect(page.ids.count <= 2)
                seen += page.ids
                pages += 1
                guard let next = page.next else { break }
                after = "&after=" + next
            }
            #expect(seen == ids.reversed() && pages == 3, "\(pages) pages: \(seen)")
            #expect(try await Self.page(client, "?scenario=alpha").ids == ids.prefix(3).reversed())
            #expect(try await Self.page(client, "?state=succeeded&scenario=beta&limit=1").ids == [ids[4]])
            #expect(try await Self.page(client, "?state=active").ids.isEmpty)
            #expect(try await Self.page(client, "?state=finished,running").ids.count == 5)
            for bad in ["?limit=0", "?limit=1001", "?limit=x", "?after=nope", "?after=2026-12-03T10:00:00.000Z_UPPER", "?state=done", "?scenario="] {
                let response = try await client.execute(uri: "/v1/runs" + bad, method: .get, headers: Router.headers(Router.read))
                #expect(response.status == .badRequest, "\(bad)")
                #expect((try Router.json(response)["error"] as? [String: Any])?["code"] as? String == "bad_request", "\(bad)")
            }
            return ids
        }
        try await Router.withAgent(directory: directory) { client, registry in
            let listed = try await Self.page(client, "").ids
            #expect(listed == ids.reversed(), "a restarted agent lists the runs it kept")
            #expect(registry.runs.withLock { $0.isEmpty })
        }
    }

    @Test("faultline_state_bytes: the state directory's size on /metrics")
    func stateMetric() async throws {
        try await Router.withAgent { client, registry in
            _ = try await Self.runs(client, registry, 1)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get, headers: Router.headers(Router.read)).body)
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("faultline_state_bytes ") }
            let value = line.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
            #expect(value > 4_000_000, "the journal's reserve alone is 4 MiB: \(line ?? "missing")")
        }
    }
}
