import FaultlineCore
import FaultlineEngine
import FaultlineSystem
import Foundation
import Testing

/// The HTML report opens in a real browser (headless Chromium) and shows its chart.
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
        #expect(html.contains("<h1>checkout-db-latency — aborted (exit 1)</h1>") && html.contains("<table id=\"impact\">") && html.contains("<h3>What happened</h3>"))
        // A probe's JUnit time is the span it watched (0 to 9.75 s), not the sum of its overlapping latencies.
        let junit = report.junit()
        #expect(junit.contains("name=\"checkout\" time=\"9.500\"") && junit.contains("classname=\"checkout-db-latency.faults\" name=\"db-latency\" time=\"2.200\""), "\(junit)")
        #expect(junit.contains("<system-out>acted on 42 packets: 42 packets (2520 bytes) dropped by iptables</system-out>"), "\(junit)")
    }

    @Test func theChartIsInlineSVGWithFaultWindowsAndTheAbort() {
        let html = ReportRenderer.html(Self.sampleReport())
        #expect(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"timeline\" width=\"960\" height=\"240\""))
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
        #expect(html.contains("<p>Runbook: javascript:alert(1)</p>") && !html.contains("href=\"javascript"), "\(html)")

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

    @Test(.enabled(if: chromium != nil, "needs Chromium (Debian package chromium)"))
    func theReportOpensInHeadlessChromium() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-cli-report-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let page = directory.appendingPathComponent("report.html").path
        let shot = directory.appendingPathComponent("shot.png").path
        try ReportRenderer.html(Self.sampleReport()).write(toFile: page, atomically: true, encoding: .utf8)
        let common = [Self.chromium!, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(directory.path)/profile"]
        let dom = try await SubprocessRunner().run(common + ["--dump-dom", "file://\(page)"], timeout: .seconds(60), outputLimit: 8 << 20)
        #expect(dom.standardOutput.contains("id=\"timeline\""), "\(dom.standardError.suffix(500))")
        _ = try await SubprocessRunner().run(common + ["--screenshot=\(shot)", "--window-size=1100,700", "file://\(page)"], timeout: .seconds(60), outputLimit: 8 << 20)
        let png = try Data(contentsOf: URL(fileURLWithPath: shot))
        #expect(png.prefix(8) == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]))
        let width = png[16..<20].reduce(0) { $0 << 8 | Int($1) }
        #expect(width == 1100)
        #expect(png.count > 20_000, "a page with a chart, not a blank one (\(png.count) bytes)")
    }
}
