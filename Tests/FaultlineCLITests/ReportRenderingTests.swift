import FaultlineCore
@testable import FaultlineEngine
import FaultlineSystem
import Foundation
import Testing

/// report.md and report.html carry the same record of the run; the HTML opens in a real browser (headless Chromium)
/// at 1400 px with every label of its chart inside the picture and clear of the others.
@Suite struct ReportRenderingTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static func sampleReport() -> RunReport {
        var probes: [RunReport.ProbeSample] = []
        for index in 0..<40 {
            let bad = (20...27).contains(index)
            let latency = 0.01 + Double(index % 7) * 0.003
            probes.append(RunReport.ProbeSample(probe: index % 2 == 0 ? "checkout" : "db-port", phase: .method, at: Double(index) * 0.25,
                                                ok: !bad, good: !bad, latency: latency, detail: bad ? "timeout" : "status 200"))
        }
        return RunReport(scenario: "checkout-db-latency", description: nil, runID: "abc12345", host: "test", user: "root",
                         startedAt: Date(), endedAt: Date().addingTimeInterval(10), state: .aborted, exitCode: 1,
                         abortReason: "probe 'checkout' failed 3 times in a row (timeout)", abortedAt: 6.9, runbook: nil,
                         steadyStateBefore: true, steadyStateAfter: true,
                         slo: RunReport.SLOVerdict(objective: 99, good: 32, total: 40, met: false, budgetUsed: 20),
                         faults: [RunReport.FaultRecord(name: "db-latency", type: .drop, target: "this host", summary: "drop traffic",
                                                        injectedAt: 4.8, revertedAt: 7.0, injectCommands: [], revertCommands: [],
                                                        state: .reverted, error: nil)],
                         probes: probes, review: RunReport.reviewTemplate)
    }

    /// What a real run looks like: two probes with 100 results each over 30 s (and a few before and after), two faults,
    /// an abort near the end, latencies from 5 to 900 ms.
    static func realisticReport() -> RunReport {
        func jitter(_ index: Int, _ salt: Double) -> Double { abs((sin(Double(index) * 12.9898 + salt) * 43758.5453).truncatingRemainder(dividingBy: 1)) }
        var probes: [RunReport.ProbeSample] = []
        let times = [-3.0, -2.0, -1.0] + (0..<100).map { Double($0) * 0.3 } + [30.2, 30.7]
        for (index, at) in times.enumerated() {
            let phase: RunReport.ProbeSample.Phase = at < 0 ? .before : at < 30 ? .method : .after
            // checkout: 8–25 ms, 410–900 ms while the database is slow, timeouts late in the packet loss.
            var latency = 0.008 + jitter(index, 1) * 0.017, ok = true, detail = "status 200"
            if at >= 4, at < 14 { latency = 0.41 + jitter(index, 2) * (index % 9 == 0 ? 0.49 : 0.06) }
            if at >= 24.5, at < 27.5, index % 2 == 0 { latency = 0.9; ok = false; detail = "timeout after 900ms" }
            let good = ok && latency <= 0.3
            probes.append(RunReport.ProbeSample(probe: "checkout", phase: phase, at: at, ok: ok, good: good, latency: latency,
                                                detail: ok && !good ? "status 200 in \(Int(latency * 1000))ms, slower than 300ms" : detail))
            // db-port: 5–12 ms, a few refused connections in the packet loss.
            let refused = at >= 17 && at < 27.5 && index % 7 == 0
            probes.append(RunReport.ProbeSample(probe: "db-port", phase: phase, at: at + 0.1, ok: !refused, good: !refused,
                                                latency: refused ? 0.2 + jitter(index, 3) * 0.5 : 0.005 + jitter(index, 4) * 0.007,
                                                detail: refused ? "connect: connection timed out" : "connected"))
        }
        let faults = [
            RunReport.FaultRecord(name: "checkout-db-latency", type: .latency, target: "netns checkout", summary: "delay 400ms on eth0 egress to hosts 10.0.3.7 ports 5432 tcp",
                                  injectedAt: 4.0, revertedAt: 14.0,
                                  injectCommands: ["tc qdisc add dev eth0 root handle 1: prio bands 4", "tc qdisc add dev eth0 parent 1:4 handle 40: netem delay 400ms",
                                                   "tc filter add dev eth0 parent 1: protocol ip prio 1 u32 match ip dst 10.0.3.7/32 match ip dport 5432 0xffff flowid 1:4"],
                                  revertCommands: ["tc qdisc del dev eth0 root handle 1:"], state: .reverted, error: nil,
                                  evidence: FaultEvidence(hits: 1812, unit: "packets", detail: "1812 packets (98 KB) delayed by netem")),
            RunReport.FaultRecord(name: "cache-packet-loss", type: .packetLoss, target: "netns checkout", summary: "lose 30% of packets on eth0 egress to hosts 10.0.3.9",
                                  injectedAt: 17.0, revertedAt: 27.5,
                                  injectCommands: ["iptables -w -t mangle -N FAULTLINE-ab12cd34-2", "iptables -w -t mangle -A FAULTLINE-ab12cd34-2 -d 10.0.3.9/32 -m statistic --mode random --probability 0.3 -j DROP"],
                                  revertCommands: ["iptables -w -t mangle -F FAULTLINE-ab12cd34-2", "iptables -w -t mangle -X FAULTLINE-ab12cd34-2"], state: .reverted, error: nil,
                                  evidence: FaultEvidence(hits: 311, unit: "packets", detail: "311 packets (18 KB) dropped by iptables")),
        ]
        let start = Date(timeIntervalSince1970: 1_767_000_000)
        var report = RunReport(scenario: "checkout-resilience", description: "Checkout keeps answering when its database is slow and its cache loses packets.",
                               runID: "ab12cd34", host: "shop-7", user: "oncall", startedAt: start, endedAt: start.addingTimeInterval(38),
                               state: .aborted, exitCode: 1, abortReason: "probe 'checkout' failed 4 times in a row (timeout after 900ms)",
                               abortCause: nil, abortProbe: "checkout", abortedAt: 27.4, runbook: "https://wiki.example/runbooks/checkout",
                               steadyStateBefore: true, steadyStateAfter: true,
                               slo: RunReport.SLOVerdict(objective: 99, good: 150, total: 200, met: false, budgetUsed: 25),
                               faults: faults, probes: probes, review: RunReport.reviewTemplate)
        report.recoveryWindow = 10
        report.recoveredAfter = 0.7
        return report
    }

    /// A run whose abort is the last thing on the chart, with six overlapping faults whose long names cannot all sit side by side.
    static func crowdedReport() -> RunReport {
        let probes = (0...100).map { (index: Int) -> RunReport.ProbeSample in
            RunReport.ProbeSample(probe: "a-probe-with-a-rather-long-name-\(index % 3)", phase: .method, at: Double(index) * 0.2, ok: index < 95, good: index < 90,
                                  latency: 0.0004 + Double(index % 11) * 0.0013, detail: "status 200")
        }
        // Six overlapping to the end, and ten short ones one after the other, each far narrower than its name.
        let overlapping = (0..<6).map { index in
            RunReport.FaultRecord(name: "network-partition-between-checkout-and-payments-\(index)", type: .drop, target: "pod shop/checkout-7d9f",
                                  summary: "drop traffic", injectedAt: Double(index) * 1.5 + 10, revertedAt: 20,
                                  injectCommands: ["iptables -w -A FAULTLINE-x-\(index) -j DROP"], revertCommands: ["iptables -w -D FAULTLINE-x-\(index) -j DROP"],
                                  state: .reverted, error: nil)
        }
        let short = (0..<10).map { index in
            RunReport.FaultRecord(name: "dns-failure-for-the-payments-provider-\(index)", type: .drop, target: "pod shop/checkout-7d9f",
                                  summary: "drop DNS", injectedAt: Double(index) * 0.8 + 1, revertedAt: Double(index) * 0.8 + 1.6,
                                  injectCommands: [], revertCommands: [], state: .reverted, error: nil)
        }
        let faults = short + overlapping
        return RunReport(scenario: "crowded", description: nil, runID: "cd34ef56", host: "test", user: "root", startedAt: Date(), endedAt: Date().addingTimeInterval(20),
                         state: .aborted, exitCode: 1, abortReason: "probe 'a-probe-with-a-rather-long-name-0' failed 3 times in a row", abortedAt: 20, runbook: nil,
                         steadyStateBefore: true, steadyStateAfter: false, slo: nil, faults: faults, probes: probes, review: RunReport.reviewTemplate)
    }

    /// The labels drawn in an SVG: their class, id, position, anchor and text.
    struct DrawnLabel {
        var cls: String
        var id: String?
        var x: Double
        var y: Double
        var anchor: String
        var bold: Bool
        var text: String
    }

    static func labels(_ svg: String) -> [DrawnLabel] {
        svg.matches(of: /<text class="([a-z-]+)"( id="([a-z-]+)")? x="(-?[0-9.]+)" y="(-?[0-9.]+)"([^>]*)>([^<]*)/).map { match in
            let rest = String(match.output.6)
            let anchor = rest.firstMatch(of: /text-anchor="([a-z]+)"/).map { String($0.output.1) } ?? "start"
            return DrawnLabel(cls: String(match.output.1), id: match.output.3.map(String.init), x: Double(match.output.4)!, y: Double(match.output.5)!,
                              anchor: anchor, bold: rest.contains("bold"), text: String(match.output.7))
        }
    }

    /// Where a label is drawn from and to, by the chart's own (generous) estimate of its width.
    static func extent(_ label: DrawnLabel) -> ClosedRange<Double> {
        let width = ReportChart.textWidth(label.text, bold: label.bold)
        switch label.anchor {
        case "end": return (label.x - width)...label.x
        case "middle": return (label.x - width / 2)...(label.x + width / 2)
        default: return label.x...(label.x + width)
        }
    }

    @Test("the timeline lists each inject, the first bad result of each probe, the abort, each revert and the recovery, in time order, in report.md and report.html")
    func theTimelineSaysWhatHappenedWhen() throws {
        let report = Self.realisticReport()
        let markdown = ReportRenderer.markdown(report)
        let rows = [
            "| +4.0s | inject checkout-db-latency | latency on netns checkout: delay 400ms on eth0 egress to hosts 10.0.3.7 ports 5432 tcp |",
            "| +4.2s | first bad result | probe checkout: status 200 in 461ms, slower than 300ms (462 ms); 0.2 s after checkout-db-latency went in |",
            "| +14.0s | revert checkout-db-latency | in place 10.0 s; acted on 1812 packets: 1812 packets (98 KB) delayed by netem |",
            "| +14.1s | back within baseline | probe checkout: 0.1 s after checkout-db-latency was reverted |",
            "| +17.0s | inject cache-packet-loss |",
            "| +18.1s | first bad result | probe db-port: connect: connection timed out (478 ms); 1.1 s after cache-packet-loss went in |",
            "| +24.9s | first bad result | probe checkout: timeout after 900ms (900 ms); 7.9 s after cache-packet-loss went in |",
            "| +27.4s | abort | probe 'checkout' failed 4 times in a row (timeout after 900ms) |",
            "| +27.5s | revert cache-packet-loss | in place 10.5 s; acted on 311 packets",
            "| +28.2s | steady state back | the probes passed again 0.7 s after the last revert (recovery window 10 s) |",
        ]
        var cursor = markdown.range(of: "## Timeline\n\n| at | event | detail |\n| --- | --- | --- |\n")?.upperBound
        #expect(cursor != nil, "\(markdown)")
        for row in rows {
            let found = cursor.flatMap { markdown.range(of: row, range: $0..<markdown.endIndex) }
            #expect(found != nil, "after the rows before it: \(row)\n\(markdown)")
            cursor = found?.upperBound ?? cursor
        }

        let html = ReportRenderer.html(report)
        #expect(html.contains("<h2>Timeline</h2><table id=\"events\"><tr><th>at</th><th>event</th><th>detail</th></tr><tr class=\"inject\"><td>+4.0s</td><td>inject checkout-db-latency</td>"), "\(html)")
        #expect(html.contains("<tr class=\"abort\"><td>+27.4s</td><td>abort</td><td>probe 'checkout' failed 4 times in a row (timeout after 900ms)</td></tr>"), "\(html)")
        #expect(html.contains("<tr class=\"recovery\"><td>+28.2s</td><td>steady state back</td>"), "\(html)")
        let events = { (text: String, marker: String) in text.components(separatedBy: marker).count - 1 }
        #expect(events(html, "<tr class=\"firstBad\">") == events(markdown, "| first bad result |"))
    }

    @Test("report.md and report.html have the same content: the header (verdict, runbook, run, host, user, start and end), each fault's summary and exact commands, the probe table")
    func bothViewsCarryTheSameRecord() {
        let report = Self.realisticReport()
        let markdown = ReportRenderer.markdown(report)
        let html = ReportRenderer.html(report)
        for fact in ["| run | `ab12cd34` |", "| host | shop-7 |", "| user | oncall |", "| started | 2025-12-29T09:20:00Z |", "| ended | 2025-12-29T09:20:38Z |",
                     "| verdict | **aborted** (exit 1) |", "| runbook | <https://wiki.example/runbooks/checkout> |",
                     "| abort | probe 'checkout' failed 4 times in a row (timeout after 900ms) at +27.4s |"] {
            #expect(markdown.contains(fact), "\(fact)\n\(markdown)")
        }
        for fact in ["<tr><th>run</th><td><code>ab12cd34</code></td></tr>", "<tr><th>host</th><td>shop-7</td></tr>", "<tr><th>user</th><td>oncall</td></tr>",
                     "<tr><th>started</th><td>2025-12-29T09:20:00Z</td></tr>", "<tr><th>ended</th><td>2025-12-29T09:20:38Z</td></tr>",
                     "<tr><th>verdict</th><td><b>aborted</b> (exit 1)</td></tr>",
                     "<tr><th>runbook</th><td><a href=\"https://wiki.example/runbooks/checkout\">https://wiki.example/runbooks/checkout</a></td></tr>",
                     "<tr class=\"abort\"><th>abort</th><td>probe 'checkout' failed 4 times in a row (timeout after 900ms) at +27.4s</td></tr>",
                     "<h1>Game day: checkout-resilience <span class=\"verdict aborted\">aborted (exit 1)</span></h1>"] {
            #expect(html.contains(fact), "\(fact)\n\(html)")
        }
        // Each fault: its summary and the exact commands that put it in and took it out.
        #expect(markdown.contains("### checkout-db-latency\n\ndelay 400ms on eth0 egress to hosts 10.0.3.7 ports 5432 tcp\n\nInject:\n\n```\ntc qdisc add dev eth0 root handle 1: prio bands 4\ntc qdisc add dev eth0 parent 1:4 handle 40: netem delay 400ms\n"), "\(markdown)")
        #expect(markdown.contains("Revert:\n\n```\niptables -w -t mangle -F FAULTLINE-ab12cd34-2\niptables -w -t mangle -X FAULTLINE-ab12cd34-2\n```\n"), "\(markdown)")
        #expect(html.contains("<details class=\"fault-detail\" open><summary><b>checkout-db-latency</b>: delay 400ms on eth0 egress to hosts 10.0.3.7 ports 5432 tcp</summary><p>Inject:</p><pre>tc qdisc add dev eth0 root handle 1: prio bands 4\ntc qdisc add dev eth0 parent 1:4 handle 40: netem delay 400ms\n"), "\(html)")
        #expect(html.contains("<p>Revert:</p><pre>iptables -w -t mangle -F FAULTLINE-ab12cd34-2\niptables -w -t mangle -X FAULTLINE-ab12cd34-2</pre>"), "\(html)")
        // The probe table, the impact table and the review, in both.
        #expect(markdown.contains("## Probes\n\n| probe | results | bad | p50 | p95 | slowest |\n| --- | --- | --- | --- | --- | --- |\n| checkout | 105 | "), "\(markdown)")
        #expect(html.contains("<table id=\"probes\"><tr><th>probe</th><th>results</th><th>bad</th><th>p50</th><th>p95</th><th>slowest</th></tr><tr><td>checkout</td><td>105</td>"), "\(html)")
        for (md, tag) in [("## Impact", "<table id=\"impact\">"), ("## Faults", "<table id=\"faults\">"), ("### What happened", "<h3>What happened</h3>"), ("| 1812 packets: 1812 packets (98 KB) delayed by netem |", "<td>1812 packets: 1812 packets (98 KB) delayed by netem</td>")] {
            #expect(markdown.contains(md) && html.contains(tag), "\(md) / \(tag)")
        }
        #expect(!html.contains("<script") && !html.contains("<link") && !html.contains("src="), "no script, no external assets")
    }

    @Test("the chart: a latency axis per probe with round ms ticks, seconds after the method started along the bottom, fault windows named, the abort labelled, a legend")
    func theChartHasAxesWindowsAndALegend() throws {
        let report = Self.realisticReport()
        let svg = ReportRenderer.svg(report)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"1300\""), "\(svg.prefix(200))")
        let drawn = Self.labels(svg)
        // Round ticks up to the slowest result of each probe: checkout's is 900 ms, db-port's 547 ms.
        let latency = drawn.filter { $0.cls == "tick-latency" }.map(\.text)
        #expect(latency == ["0 ms", "250 ms", "500 ms", "750 ms", "1000 ms", "0 ms", "200 ms", "400 ms", "600 ms"], "\(latency)")
        #expect(drawn.filter { $0.cls == "tick-time" }.map(\.text) == ["+0s", "+5s", "+10s", "+15s", "+20s", "+25s", "+30s"])
        #expect(svg.contains("seconds after the method started"))
        #expect(drawn.filter { $0.cls == "fault-label" }.map(\.text) == ["checkout-db-latency", "cache-packet-loss"])
        #expect(drawn.filter { $0.cls == "probe-title" }.count == 2)
        #expect(drawn.first { $0.id == "abort-label" }?.text == "abort +27.4s")
        #expect(drawn.first { $0.id == "recovered-label" }?.text == "steady state back +28.2s")
        #expect(drawn.filter { $0.cls == "legend" }.map(\.text) == ["good result", "bad result (failed, or slower than the SLO)", "fault window", "abort", "steady state back"])
        #expect(svg.components(separatedBy: "class=\"bad\"").count - 1 == report.probes.filter { !$0.good }.count)
        #expect(svg.components(separatedBy: "<rect class=\"fault\"").count - 1 == 2)
        #expect(svg.contains("<line id=\"abort\""))
        #expect(!svg.contains("<script") && !svg.contains("href"), "self-contained")
    }

    @Test("an abort at the very end of the run is labelled left of its line, inside the picture; crowded fault names are staggered or cut, never on top of each other")
    func labelsStayInsideAndApart() throws {
        let svg = ReportRenderer.svg(Self.crowdedReport())
        let width = try #require(svg.firstMatch(of: /width="([0-9]+)"/).flatMap { Double($0.output.1) })
        let drawn = Self.labels(svg)
        let abort = try #require(drawn.first { $0.id == "abort-label" })
        #expect(abort.text == "abort +20.0s" && abort.anchor == "end", "flipped left of the line: \(abort)")
        for label in drawn {
            let span = Self.extent(label)
            #expect(span.lowerBound >= 0 && span.upperBound <= width, "inside the \(width) px picture: \(label) spans \(span)")
        }
        let faults = drawn.filter { $0.cls == "fault-label" }
        #expect(faults.count >= 12, "\(faults.map(\.text))")
        #expect(Set(faults.map(\.y)).count > 1, "staggered on lanes")
        #expect(faults.contains { $0.text.hasSuffix("…") }, "cut where a whole name does not fit: \(faults.map(\.text))")
        #expect(faults.filter { $0.text.hasPrefix("network-partition") }.count == 6, "each overlapping window named: \(faults.map(\.text))")
        for (index, a) in faults.enumerated() {
            for b in faults[(index + 1)...] where a.y == b.y {
                #expect(!Self.extent(a).overlaps(Self.extent(b)), "\(a.text) and \(b.text) overlap")
            }
        }
        // Every name is still in a tooltip, cut or not.
        for index in 0..<6 { #expect(svg.contains("<title>network-partition-between-checkout-and-payments-\(index) (")) }
        for index in 0..<10 { #expect(svg.contains("<title>dns-failure-for-the-payments-provider-\(index) (")) }
    }

    @Test("the record of the game day: the verdict heads it, the SLO in words, the impact per phase, what each fault acted on, a review prefilled with what the run knows (also review.md), JUnit with real durations")
    func theReportIsTheRecord() throws {
        var report = Self.sampleReport()
        report.faults[0].evidence = FaultEvidence(hits: 42, unit: "packets", detail: "42 packets (2520 bytes) dropped by iptables")
        report = RunReport(scenario: report.scenario, description: nil, runID: report.runID, host: report.host, user: report.user,
                           startedAt: report.startedAt, endedAt: report.endedAt, state: report.state, exitCode: report.exitCode,
                           abortReason: report.abortReason, abortedAt: report.abortedAt, runbook: "https://wiki.example/runbooks/checkout",
                           steadyStateBefore: true, steadyStateAfter: true, slo: report.slo, faults: report.faults, probes: report.probes,
                           review: RunReport.reviewTemplate)
        let markdown = ReportRenderer.markdown(report)
        #expect(markdown.contains("| verdict | **aborted** (exit 1) |"), "\(markdown)")
        #expect(markdown.contains("| SLO | missed: 8 of 40 results bad, 20% of the run, 20× the 1% budget (objective 99% good) |"), "\(markdown)")
        #expect(markdown.contains("| checkout | fault db-latency (+4.8s to +7.0s) |"), "\(markdown)")
        #expect(markdown.contains("| 42 packets: 42 packets (2520 bytes) dropped by iptables |"), "\(markdown)")
        #expect(markdown.contains("fault db-latency: probe checkout saw it 0.2 s after the inject (+5.0s)"), "\(markdown)")
        let review = ReportRenderer.review(report)
        #expect(review.contains("- At +4.8s, db-latency went in on this host: drop traffic; it acted on 42 packets (42 packets (2520 bytes) dropped by iptables); reverted at +7.0s, after 2.2 s."), "\(review)")
        #expect(review.contains("## What surprised us\n\n- _(for the team)_"), "\(review)")
        #expect(review.contains("runbook: <https://wiki.example/runbooks/checkout>"), "\(review)")
        #expect(report.review["whatHappened"]?.contains("db-latency went in") == true)
        #expect(try String(decoding: report.rendered(.review), as: UTF8.self) == review)
        #expect(RunReport.Format.files.map(\.fileName).contains("review.md"))
        let html = ReportRenderer.html(report)
        #expect(html.contains("<h1>Game day: checkout-db-latency <span class=\"verdict aborted\">aborted (exit 1)</span></h1>") && html.contains("<table id=\"impact\">") && html.contains("<h3>What happened</h3>"))
        // A probe's JUnit time is the span it watched (0 to 9.75 s), not the sum of its overlapping latencies.
        let junit = report.junit()
        #expect(junit.contains("name=\"checkout\" time=\"9.500\"") && junit.contains("classname=\"checkout-db-latency.faults\" name=\"db-latency\" time=\"2.200\""), "\(junit)")
        #expect(junit.contains("<system-out>acted on 42 packets: 42 packets (2520 bytes) dropped by iptables</system-out>"), "\(junit)")
    }

    @Test func theChartIsInlineSVGWithFaultWindowsAndTheAbort() {
        let html = ReportRenderer.html(Self.sampleReport())
        #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"1300\""))
        #expect(html.components(separatedBy: "class=\"bad\"").count - 1 == 8)
        #expect(html.contains("class=\"fault\""))
        #expect(html.contains("id=\"abort\""))
        #expect(!html.contains("<script") && !html.contains("<link"), "no external assets")
    }

    @Test("the scenario's description and runbook reach report.md and report.html as text: no HTML, no Markdown, a link only for http(s)")
    func descriptionAndRunbookAreEscaped() {
        var report = Self.sampleReport()
        report.description = "<script>alert(1)</script> & [click](javascript:alert(2)) **now** `x` a|b\n# not a heading\n- not a list\n1. not a list"
        report.runbook = "javascript:alert(1)"
        let markdown = ReportRenderer.markdown(report)
        #expect(!markdown.contains("<script"), "\(markdown)")
        #expect(markdown.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; \\[click\\](javascript:alert(2)) \\*\\*now\\*\\* \\`x\\` a\\|b\n\\# not a heading\n\\- not a list\n1\\. not a list\n"),
                "\(markdown)")
        #expect(markdown.contains("| runbook | javascript:alert(1) |\n"), "not a link: \(markdown)")
        let html = ReportRenderer.html(report)
        #expect(!html.contains("<script"), "\(html)")
        #expect(html.contains("<p class=\"description\">&lt;script&gt;alert(1)&lt;/script&gt; &amp; [click](javascript:alert(2))"), "\(html)")
        #expect(html.contains("<tr><th>runbook</th><td>javascript:alert(1)</td></tr>") && !html.contains("href=\"javascript"), "\(html)")

        report.runbook = "https://wiki.example/run|book\"><script>alert(3)</script>"
        let linked = ReportRenderer.markdown(report)
        #expect(linked.contains("| runbook | <https://wiki.example/run%7Cbook%22%3E%3Cscript%3Ealert(3)%3C/script%3E> |\n"), "\(linked)")
        #expect(!linked.contains("<script"))
        let linkedHTML = ReportRenderer.html(report)
        #expect(linkedHTML.contains("<a href=\"https://wiki.example/run%7Cbook%22%3E%3Cscript%3Ealert(3)%3C/script%3E\">https://wiki.example/run|book&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;</a>"),
                "\(linkedHTML)")
        #expect(!linkedHTML.contains("<script"))

        report.runbook = "https://wiki.example/runbooks/checkout"
        #expect(ReportRenderer.markdown(report).contains("| runbook | <https://wiki.example/runbooks/checkout> |\n"))
        #expect(ReportRenderer.html(report).contains("<a href=\"https://wiki.example/runbooks/checkout\">https://wiki.example/runbooks/checkout</a>"))
    }

    @Test("what the service or a command answered (abort reasons, fault errors, probe details) is inert text in report.md, as in report.html")
    func answersAreEscaped() {
        var report = Self.sampleReport()
        report.abortReason = "probe 'web' failed: body <img src=x onerror=alert(1)> | [x](javascript:1)"
        report.faults[0].error = "tc said: <b>no</b>\n# heading"
        report.probes[20].detail = "status 500: <script>alert(2)</script>"
        report.probes[20].traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
        let markdown = ReportRenderer.markdown(report)
        #expect(!markdown.contains("<img") && !markdown.contains("<script") && !markdown.contains("<b>"), "\(markdown)")
        #expect(markdown.contains("| abort | probe 'web' failed: body &lt;img src=x onerror=alert(1)&gt; \\| \\[x\\](javascript:1) at +6.9s |\n"), "\(markdown)")
        #expect(markdown.contains("| reverted: tc said: &lt;b&gt;no&lt;/b&gt; # heading | not read |\n"), "one line, no heading: \(markdown)")
        #expect(markdown.contains("| status 500: &lt;script&gt;alert(2)&lt;/script&gt; |"), "\(markdown)")
        #expect(!ReportRenderer.html(report).contains("<img"))
    }

    /// Appended to a copy of the report (never to the report itself): on load, measures every text of every SVG and
    /// the page, and writes what it found as JSON into `<pre id="measured">`.
    static let measuringScript = """
        <script>
        window.addEventListener('load', function () {
          var found = {svgs: 0, texts: 0, clipped: [], overlapping: [], scrollWidth: document.documentElement.scrollWidth,
                       clientWidth: document.documentElement.clientWidth};
          function words(t) { return Array.from(t.childNodes).filter(function (n) { return n.nodeName !== 'title'; }).map(function (n) { return n.textContent; }).join(''); }
          document.querySelectorAll('svg').forEach(function (svg) {
            found.svgs++;
            var box = svg.getBoundingClientRect();
            var texts = Array.from(svg.querySelectorAll('text'));
            var boxes = texts.map(function (t) { return t.getBoundingClientRect(); });
            boxes.forEach(function (r, i) {
              found.texts++;
              var bbox = texts[i].getBBox();
              if (bbox.width <= 0 || r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
                found.clipped.push(words(texts[i]) + ' at ' + [r.left, r.right, r.top, r.bottom].map(Math.round).join(',') + ' in ' + [box.left, box.right, box.top, box.bottom].map(Math.round).join(','));
            });
            for (var i = 0; i < boxes.length; i++) for (var j = i + 1; j < boxes.length; j++) {
              var a = boxes[i], b = boxes[j];
              if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
                found.overlapping.push(words(texts[i]) + ' / ' + words(texts[j]));
            }
          });
          var out = document.createElement('pre');
          out.id = 'measured';
          out.textContent = JSON.stringify(found);
          document.body.appendChild(out);
        });
        </script>
        """

    /// What the measuring script found.
    struct Measured: Decodable {
        var svgs: Int
        var texts: Int
        var clipped: [String]
        var overlapping: [String]
        var scrollWidth: Int
        var clientWidth: Int
    }

    static func chromiumArguments(_ directory: URL) -> [String] {
        [chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(directory.path)/profile"]
    }

    /// Opens a copy of `html` with the measuring script in headless Chromium, 1400 px wide, and reads its findings.
    static func measure(_ html: String, in directory: URL, name: String) async throws -> Measured {
        let page = directory.appendingPathComponent("\(name)-measured.html").path
        try html.replacingOccurrences(of: "</body></html>", with: measuringScript + "</body></html>").write(toFile: page, atomically: true, encoding: .utf8)
        let dom = try await SubprocessRunner().run(chromiumArguments(directory) + ["--window-size=1400,900", "--virtual-time-budget=2000", "--dump-dom", "file://\(page)"],
                                                   timeout: .seconds(90), outputLimit: 16 << 20)
        let json = try #require(dom.standardOutput.firstMatch(of: /<pre id="measured">([^<]*)<\/pre>/).map { String($0.output.1) },
                                "no findings in the page: \(dom.standardError.suffix(800))")
        return try JSONDecoder().decode(Measured.self, from: Data(json.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&amp;", with: "&").utf8))
    }

    @Test("at 1400 px in headless Chromium the report fits the window and every label of its chart is inside the picture and clear of the others, also with the abort at the very end; the screenshot is a real page",
          .enabled(if: chromium != nil, "needs Chromium (Debian package chromium)"))
    func theReportOpensInHeadlessChromium() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-cli-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        for (name, report) in [("realistic", Self.realisticReport()), ("crowded", Self.crowdedReport()), ("sample", Self.sampleReport())] {
            let html = ReportRenderer.html(report)
            #expect(!html.contains("<script"), "the report itself carries no script")
            let measured = try await Self.measure(html, in: directory, name: name)
            #expect(measured.svgs == 1 && measured.texts > 20, "\(name): \(measured)")
            #expect(measured.clipped.isEmpty, "\(name): text outside its picture: \(measured.clipped)")
            #expect(measured.overlapping.isEmpty, "\(name): labels on top of each other: \(measured.overlapping)")
            #expect(measured.scrollWidth <= measured.clientWidth && measured.clientWidth <= 1400, "\(name): the page scrolls sideways (\(measured.scrollWidth) px in \(measured.clientWidth))")
        }

        let page = directory.appendingPathComponent("report.html").path
        let shot = directory.appendingPathComponent("shot.png").path
        try ReportRenderer.html(Self.realisticReport()).write(toFile: page, atomically: true, encoding: .utf8)
        _ = try await SubprocessRunner().run(Self.chromiumArguments(directory) + ["--screenshot=\(shot)", "--window-size=1400,1000", "file://\(page)"],
                                             timeout: .seconds(90), outputLimit: 8 << 20)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 1400)
        #expect(png.count > 40_000, "a page with a chart, not a blank one (\(png.count) bytes)")
        // FAULTLINE_REPORT_KEEP=DIR keeps the report (report.html, report.md), its screenshot (report-1400.png) and the
        // crowded one (crowded.html) to look at.
        if let keep = ProcessInfo.processInfo.environment["FAULTLINE_REPORT_KEEP"] {
            try FileManager.default.createDirectory(atPath: keep, withIntermediateDirectories: true)
            for (from, to) in [(shot, "report-1400.png"), (page, "report.html")] {
                try? FileManager.default.removeItem(atPath: keep + "/" + to)
                try FileManager.default.copyItem(atPath: from, toPath: keep + "/" + to)
            }
            try ReportRenderer.markdown(Self.realisticReport()).write(toFile: keep + "/report.md", atomically: true, encoding: .utf8)
            try ReportRenderer.html(Self.crowdedReport()).write(toFile: keep + "/crowded.html", atomically: true, encoding: .utf8)
        }
    }
}
