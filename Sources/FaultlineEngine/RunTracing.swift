import FaultlineSystem
import Foundation
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// Traces of runs, exported over OTLP (HTTP or gRPC) by swift-otel, so a game day shows up in the tracing backend
/// (a collector, Jaeger, Tempo, Zipkin through a collector) beside the service's own traces: a span per run, per fault
/// (inject to revert) and per probe request. Off unless an endpoint is configured.
///
/// Spans are queued and sent in batches by a service that runs beside the work (`around`); nothing in a run waits for
/// the collector. At the end what is queued is flushed, for at most a few seconds.
public final class TraceExport: Sendable {
    public let tracer: any Tracer
    let group: ServiceGroup

    /// The exporter when tracing is configured: `--otlp-endpoint` (which takes precedence, with the meaning of
    /// OTEL_EXPORTER_OTLP_ENDPOINT), else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; nil when
    /// none is set, or OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. The protocol is http/protobuf unless
    /// OTEL_EXPORTER_OTLP_PROTOCOL (or ..._TRACES_PROTOCOL) says grpc or http/json; the other OTEL_* variables
    /// (headers, certificates, compression, sampler) apply as the OpenTelemetry specification says.
    public static func start(endpoint flag: String?, version: String, warnings: Logger) throws -> TraceExport? {
        let environment = ProcessInfo.processInfo.environment
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" || environment["OTEL_TRACES_EXPORTER"]?.lowercased() == "none" { return nil }
        if let flag {
            // swift-otel reads the environment itself; the flag stands for the general variable, so it appends
            // /v1/traces for OTLP/HTTP and takes the address as it is for gRPC.
            ProcessEnvironment.set("OTEL_EXPORTER_OTLP_ENDPOINT", flag)
            ProcessEnvironment.unset("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        }
        let current = ProcessInfo.processInfo.environment
        guard current["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? current["OTEL_EXPORTER_OTLP_ENDPOINT"] != nil else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = "faultline"
        configuration.resourceAttributes = ["host.name": ProcessInfo.processInfo.hostName, "service.version": version]
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(5)
        configuration.traces.otlpExporter.timeout = .seconds(5)
        configuration.diagnosticLogger = .custom(warnings)
        configuration.diagnosticLogLevel = .warning
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        let group = ServiceGroup(services: [backend.service], logger: Logger(label: "faultline.traces", factory: { _ in SwiftLogNoOpLogHandler() }))
        return TraceExport(tracer: backend.factory, group: group)
    }

    init(tracer: any Tracer, group: ServiceGroup) {
        self.tracer = tracer
        self.group = group
    }

    /// Runs `body` with the exporter sending beside it; then sends what is queued and stops, giving up after `within`
    /// (a collector that does not answer holds nothing up).
    public func around<T: Sendable>(within: Duration = .seconds(6), _ body: @Sendable () async -> T) async -> T {
        let group = group
        return await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try? await group.run() }
            let result = await body()
            await group.triggerGracefulShutdown()
            tasks.addTask { try? await Task.sleep(for: within) }
            await tasks.next()
            tasks.cancelAll()
            return result
        }
    }
}

extension Optional where Wrapped == TraceExport {
    /// `body` with the exporter beside it, or alone without one.
    public func around<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        switch self {
        case .some(let traces): await traces.around(body)
        case .none: await body()
        }
    }
}

/// A span of a run, or nothing when tracing is off: every call is then a no-op, so the runner reads the same either way.
public struct RunSpan: Sendable {
    let tracer: (any Tracer)?
    let span: (any Span)?

    /// No span.
    public static let none = RunSpan(tracer: nil, span: nil)

    /// A new top-level span (a run).
    public static func root(_ tracer: (any Tracer)?, _ name: String) -> RunSpan {
        guard let tracer else { return .none }
        return RunSpan(tracer: tracer, span: tracer.startSpan(name, context: .topLevel, ofKind: .internal))
    }

    /// A child of this span (a fault, a probe request); none when this is none.
    public func child(_ name: String, kind: SpanKind = .internal) -> RunSpan {
        guard let tracer, let span else { return .none }
        return RunSpan(tracer: tracer, span: tracer.startSpan(name, context: span.context, ofKind: kind))
    }

    public func set(_ key: String, _ value: String?) {
        if let value { span?.attributes[key] = value }
    }

    public func set(_ key: String, _ value: Int) { span?.attributes[key] = value }
    public func set(_ key: String, _ value: Double) { span?.attributes[key] = value }
    public func set(_ key: String, _ value: Bool) { span?.attributes[key] = value }

    /// Marks the span failed, with why.
    public func fail(_ message: String) { span?.setStatus(SpanStatus(code: .error, message: message)) }

    /// Something that happened at this moment inside the span (an abort, a repeat).
    public func event(_ name: String, _ attributes: [String: String] = [:]) {
        guard let span else { return }
        var values = SpanAttributes()
        for (key, value) in attributes { values[key] = value }
        span.addEvent(SpanEvent(name: name, attributes: values))
    }

    public func end() { span?.end() }

    /// The span's trace ID in hex, the one a tracing backend searches by.
    public var traceID: String? { span?.context.otelTraceID }

    /// The W3C `traceparent` value that makes a request a child of this span.
    public var traceparent: String? {
        guard let tracer, let span else { return nil }
        var headers: [String: String] = [:]
        tracer.inject(span.context, into: &headers, using: HeaderInjector())
        return headers["traceparent"]
    }
}

struct HeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}
