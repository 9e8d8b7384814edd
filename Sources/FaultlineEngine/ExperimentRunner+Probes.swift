import FaultlineCore
import FaultlineFaults
import FaultlineJournal
import FaultlineProbes
import FaultlineSystem
import Foundation
import Synchronization
import Tracing

/// The steady state: probe requests in their spans, the checks before and after the method, and the probes' loops
/// during it.
extension ExperimentRunner {
    /// One probe request in its own span (a child of the run's), which an http probe's `traceparent` header carries
    /// into the service; returns the outcome and the trace ID.
    func check(_ probe: Probe, phase: RunReport.ProbeSample.Phase, span run: RunSpan) async -> (ProbeOutcome, traceID: String?) {
        let span = run.child("probe \(probe.name)", kind: .client)
        var request = probe
        span.set("faultline.probe.name", probe.name.rawValue)
        span.set("faultline.probe.kind", probe.check.kind)
        span.set("faultline.probe.phase", phase.rawValue)
        if case .http(var http) = probe.check {
            span.set("http.request.method", http.method)
            span.set("url.full", http.url)
            if let traceparent = span.traceparent {
                http.headers = (http.headers ?? [:]).filter { $0.key.lowercased() != "traceparent" }.merging(["traceparent": traceparent]) { $1 }
                request.check = .http(http)
            }
        }
        let outcome = await probes.check(request)
        if let status = outcome.status { span.set("http.response.status_code", status) }
        span.set("faultline.probe.ok", outcome.ok)
        span.set("faultline.probe.detail", outcome.detail)
        span.set("faultline.probe.latency_ms", outcome.latency * 1000)
        if !outcome.ok { span.fail(outcome.detail) }
        span.end()
        return (outcome, span.traceID)
    }

    /// Every probe once, in parallel (but those checked only `during` a fault); true when all passed.
    func checkAll(_ ledger: ProbeLedger, phase: RunReport.ProbeSample.Phase, at: Double, span: RunSpan) async -> Bool {
        let probes = (scenario.spec.steadyState?.probes ?? []).filter { $0.during == nil }
        return await withTaskGroup(of: Bool.self) { group in
            for probe in probes {
                group.addTask {
                    let (outcome, traceID) = await check(probe, phase: phase, span: span)
                    _ = ledger.record(probe, outcome, phase: phase, at: at, traceID: traceID)
                    log.log(.probed(probe: probe.name.rawValue, phase: phase, ok: outcome.ok, latency: outcome.latency))
                    if !outcome.ok { log.log(.probeFailed(probe: probe.name.rawValue, phase: phase, detail: outcome.detail)) }
                    return outcome.ok
                }
            }
            var all = true
            for await ok in group { all = all && ok }
            return all
        }
    }

    /// Checks a probe every interval until the method ends, or at its load rate (open loop: requests go out on
    /// their schedule whether or not earlier ones have answered, so a slow service does not slow the load).
    /// A probe `during` a fault starts once it is in place and stops as its revert begins; a result that comes back
    /// after that is no result (the fault may no longer hold).
    func probeLoop(_ probe: Probe, ledger: ProbeLedger, offset: @escaping @Sendable () -> Double, aborts: AbortLog, span: RunSpan,
                   progress: FaultProgress) async {
        let clock = ContinuousClock()
        let inPlace: @Sendable () -> Bool = { probe.during.map { progress[$0.rawValue].inPlace } ?? true }
        if let fault = probe.during {
            while !inPlace() {
                if progress[fault.rawValue].reverting || progress[fault.rawValue].state.isSettled { return }
                if await stop.sleep(until: clock.now + .milliseconds(10)) { return }
            }
        }
        let begin = clock.now
        // Load shapes are timed from the method's start.
        let methodSeconds = offset()
        var next = begin
        var wasOK = true
        let check: @Sendable () async -> Bool? = {
            let at = offset()
            let (outcome, traceID) = await self.check(probe, phase: .method, span: span)
            // A request cut off because the method ended, or back after its fault began to go, is no result.
            if Task.isCancelled || !inPlace() { return nil }
            log.log(.probed(probe: probe.name.rawValue, phase: .method, ok: outcome.ok, latency: outcome.latency))
            if let abort = ledger.record(probe, outcome, phase: .method, at: at, traceID: traceID) {
                if aborts.claim() {
                    log.log(.aborted(cause: .condition, reason: abort, probe: probe.name.rawValue))
                    logRunbook()
                    span.event("abort", ["faultline.abort.reason": abort])
                }
                stop.fire(.abort(.condition, abort, probe: probe.name.rawValue))
            }
            return outcome.ok
        }
        await withDiscardingTaskGroup { inFlight in
            while stop.reason == nil, inPlace() {
                let rate = probe.loadRate(at: methodSeconds + (next - begin).seconds)
                if rate != nil {
                    inFlight.addTask { _ = await check() }  // open loop: do not wait for the answer
                } else if let ok = await check(), ok != wasOK {
                    log.log(.probeChanged(probe: probe.name.rawValue, ok: ok))
                    wasOK = ok
                }
                next = next + (rate.map { .nanoseconds(Int64(1e9 / max($0, 0.001))) } ?? .microseconds(probe.interval.microseconds))
                if await stop.sleep(until: next) { break }
            }
            // The method is over: requests still waiting for an answer are not part of it.
            inFlight.cancelAll()
        }
    }
}
