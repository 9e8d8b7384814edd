import FaultlineCore
import Foundation

/// Everything a run leaves for people and pipelines: `report.json`, the Markdown and HTML views, JUnit.
public struct RunReport: Sendable, Codable {
    public struct FaultRecord: Sendable, Codable {
        public var name: String
        public var type: FaultType
        public var target: String
        public var summary: String
        /// Seconds after the method started.
        public var injectedAt: Double?
        public var revertedAt: Double?
        public var injectCommands: [String]
        public var revertCommands: [String]
        public var state: FaultRunState
        public var error: String?
        /// What happened to its target while it was in place (its container restarted: the PID changed).
        public var note: String?
        /// What shows it acted, read before its revert; absent when it was not injected (or its driver reads none).
        public var evidence: FaultEvidence?

        public init(name: String, type: FaultType, target: String, summary: String, injectedAt: Double?, revertedAt: Double?,
                    injectCommands: [String], revertCommands: [String], state: FaultRunState, error: String?, note: String? = nil,
                    evidence: FaultEvidence? = nil) {
            self.name = name
            self.type = type
            self.target = target
            self.summary = summary
            self.injectedAt = injectedAt
            self.revertedAt = revertedAt
            self.injectCommands = injectCommands
            self.revertCommands = revertCommands
            self.state = state
            self.error = error
            self.note = note
            self.evidence = evidence
        }
    }

    public struct ProbeSample: Sendable, Codable {
        public enum Phase: String, Sendable, Codable { case before, method, after }
        public var probe: String
        public var phase: Phase
        /// Seconds after the method started (negative before it).
        public var at: Double
        public var ok: Bool
        /// Good for the SLO: ok, and not slower than its latency bound.
        public var good: Bool
        public var latency: Double
        public var detail: String
        /// With tracing on, the trace of a bad result (failed, or slower than the SLO's bound): the request's own
        /// trace, which its `traceparent` header carried into the service.
        public var traceID: String?

        public init(probe: String, phase: Phase, at: Double, ok: Bool, good: Bool, latency: Double, detail: String, traceID: String? = nil) {
            self.probe = probe
            self.phase = phase
            self.at = at
            self.ok = ok
            self.good = good
            self.latency = latency
            self.detail = detail
            self.traceID = traceID
        }
    }

    public struct SLOVerdict: Sendable, Codable {
        public var objective: Double
        public var good: Int
        public var total: Int
        public var met: Bool
        /// Share of the error budget used (1.0 = all of it).
        public var budgetUsed: Double

        public init(objective: Double, good: Int, total: Int, met: Bool, budgetUsed: Double) {
            self.objective = objective
            self.good = good
            self.total = total
            self.met = met
            self.budgetUsed = budgetUsed
        }
    }

    public var scenario: String
    public var description: String?
    public var runID: String
    /// With traces on, the run's trace ID.
    public var traceID: String?
    public var host: String
    public var user: String
    public var startedAt: Date
    public var endedAt: Date
    public var state: RunState
    /// SPEC's verdict: `held`, `deviated`, `aborted`, `inconclusive`, `interrupted` or `failed` (absent in reports
    /// written before it was added).
    public var verdict: String?
    public var exitCode: Int32
    public var abortReason: String?
    /// What stopped it early, when something did.
    public var abortCause: AbortCause?
    /// The probe whose results met an abort condition, when one did.
    public var abortProbe: String?
    public var abortedAt: Double?
    public var runbook: String?
    public var steadyStateBefore: Bool
    public var steadyStateAfter: Bool?
    /// The scenario's recovery window, in seconds, when it has one.
    public var recoveryWindow: Double?
    /// With a recovery window: how long after the last revert the probes passed again; absent when they did not.
    public var recoveredAfter: Double?
    public var slo: SLOVerdict?
    public var faults: [FaultRecord]
    public var probes: [ProbeSample]
    /// Each probe phase by phase: the baseline, each fault's window, the gaps, after the last revert (absent in
    /// reports written before it was added; so are `detection` and `recovery`).
    public var impact: [ImpactRow]?
    /// Each fault's first bad result per probe: the time to detect it.
    public var detection: [Detection]?
    /// From each revert until the probes that saw the fault are back within their baseline: the time to recover.
    public var recovery: [Recovery]?
    public var review: [String: String]

    public init(scenario: String, description: String?, runID: String, host: String, user: String, startedAt: Date, endedAt: Date,
                state: RunState, exitCode: Int32, abortReason: String?, abortCause: AbortCause? = nil, abortProbe: String? = nil, abortedAt: Double?, runbook: String?, steadyStateBefore: Bool,
                steadyStateAfter: Bool?, slo: SLOVerdict?, faults: [FaultRecord], probes: [ProbeSample], review: [String: String]) {
        self.scenario = scenario
        self.description = description
        self.runID = runID
        self.host = host
        self.user = user
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.state = state
        self.verdict = Self.verdict(state: state, exitCode: exitCode)
        self.exitCode = exitCode
        self.abortReason = abortReason
        self.abortCause = abortCause
        self.abortProbe = abortProbe
        self.abortedAt = abortedAt
        self.runbook = runbook
        self.steadyStateBefore = steadyStateBefore
        self.steadyStateAfter = steadyStateAfter
        self.slo = slo
        self.faults = faults
        self.probes = probes
        let detection = Self.detection(probes: probes, faults: faults)
        let impact = Self.impact(probes: probes, faults: faults)
        self.impact = impact
        self.detection = detection
        self.recovery = Self.recovery(probes: probes, faults: faults, impact: impact, detection: detection)
        self.review = review
        // What the run knows goes in; what only people know is left for them.
        let sections = ReportRenderer.reviewSections(self)
        if self.review["whatHappened"]?.isEmpty ?? true { self.review["whatHappened"] = sections[0].lines.joined(separator: "\n") }
        if self.review["howItWasDetected"]?.isEmpty ?? true { self.review["howItWasDetected"] = (sections[1].lines + sections[2].lines).joined(separator: "\n") }
    }

    /// What a run's end says, in SPEC's words: `held` (exit 0), `deviated` or `aborted` (1), `failed` (4),
    /// `inconclusive` (5), `interrupted` (130).
    public static func verdict(state: RunState, exitCode: Int32) -> String {
        switch state {
        case .succeeded: "held"
        case .aborted where exitCode == 130: "interrupted"
        case .failed: "failed"
        default: state.rawValue
        }
    }

    /// The blameless review template.
    public static let reviewTemplate: [String: String] = [
        "whatHappened": "",
        "howItWasDetected": "",
        "whatWouldDetectItSooner": "",
        "followUps": "",
    ]

    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(self)
    }

    /// JUnit XML: one test case per probe and per fault revert.
    public func junit() -> String {
        func escape(_ text: String) -> String {
            text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var cases: [String] = []
        var failures = 0
        let names = probes.map(\.probe).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        for name in names {
            let samples = probes.filter { $0.probe == name }
            let bad = samples.filter { !$0.good }
            let brokeSteadyState = samples.contains { $0.phase != .method && !$0.ok }
            let causedAbort = abortProbe == name
            let missedSLO = slo.map { !$0.met } == true && !bad.isEmpty
            var body = ""
            if brokeSteadyState || causedAbort || missedSLO {
                failures += 1
                let lines = bad.prefix(5).map { "\($0.phase.rawValue) +\(String(format: "%.1f", $0.at))s: \($0.detail)" + ($0.traceID.map { " (trace \($0))" } ?? "") }
                body = "<failure message=\"\(bad.count) of \(samples.count) results bad\">\(escape(lines.joined(separator: "\n")))</failure>"
            }
            // Its time is the span it watched, first result to last (its latencies overlap: their sum is no time).
            let span = (samples.map(\.at).max() ?? 0) - (samples.map(\.at).min() ?? 0)
            cases.append("<testcase classname=\"\(escape(scenario)).probes\" name=\"\(escape(name))\" time=\"\(String(format: "%.3f", span))\">\(body)</testcase>")
        }
        var errors = 0
        var skipped = 0
        for fault in faults {
            var body = ""
            if fault.state == .notInjected {
                // Never reached (the run stopped before its time): nothing to judge.
                skipped += 1
                body = "<skipped message=\"not injected: the run ended before its time\"/>"
            } else if fault.state != .reverted {
                failures += 1
                let what = fault.state == .degraded ? "did not fully act" : "revert: \(fault.state.rawValue)"
                body = "<failure message=\"\(escape(what))\">\(escape(fault.error ?? ""))</failure>"
            } else if let evidence = fault.evidence, evidence.hits == 0 {
                // It acted on nothing: the run proved nothing about it (inconclusive), an error rather than a failure.
                errors += 1
                body = "<error message=\"acted on nothing\">\(escape(evidence.detail))</error>"
            }
            if let evidence = fault.evidence, evidence.hits > 0 {
                body += "<system-out>\(escape("acted on \(evidence.amount): \(evidence.detail)"))</system-out>"
            }
            let time = fault.injectedAt.map { from in max(0, (fault.revertedAt ?? from) - from) } ?? 0
            cases.append("<testcase classname=\"\(escape(scenario)).faults\" name=\"\(escape(fault.name))\" time=\"\(String(format: "%.3f", time))\">\(body)</testcase>")
        }
        let seconds = endedAt.timeIntervalSince(startedAt)
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <testsuites name="faultline" tests="\(cases.count)" failures="\(failures)" errors="\(errors)" skipped="\(skipped)" time="\(String(format: "%.3f", seconds))">
            <testsuite name="\(escape(scenario))" tests="\(cases.count)" failures="\(failures)" errors="\(errors)" skipped="\(skipped)" time="\(String(format: "%.3f", seconds))" timestamp="\(ISO8601DateFormatter().string(from: startedAt))">
            \(cases.joined(separator: "\n"))
            </testsuite>
            </testsuites>

            """
    }
}

extension RunReport {
    /// The forms a report takes: the files of `--report DIR`, JUnit for `--junit`, and the agent's `?format=`.
    public enum Format: String, Sendable, CaseIterable, Codable {
        case json, md, html, junit, review

        /// What `--report DIR` writes.
        public static let files: [Format] = [.json, .md, .html, .review]

        public var fileName: String {
            switch self {
            case .json: "report.json"
            case .md: "report.md"
            case .html: "report.html"
            case .junit: "junit.xml"
            case .review: "review.md"
            }
        }

        /// The HTTP content type.
        public var contentType: String {
            switch self {
            case .json: "application/json"
            case .md, .review: "text/markdown; charset=utf-8"
            case .html: "text/html; charset=utf-8"
            case .junit: "application/xml"
            }
        }
    }

    /// The report in `format`.
    public func rendered(_ format: Format) throws -> Data {
        switch format {
        case .json: try json()
        case .md: Data(ReportRenderer.markdown(self).utf8)
        case .html: Data(ReportRenderer.html(self).utf8)
        case .junit: Data(junit().utf8)
        case .review: Data(ReportRenderer.review(self).utf8)
        }
    }

    /// A report as written by `json()`.
    public static func decode(_ data: Data) throws -> RunReport {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(RunReport.self, from: data)
    }
}
