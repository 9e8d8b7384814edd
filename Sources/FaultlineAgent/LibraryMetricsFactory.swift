import Metrics
import Prometheus

/// The swift-metrics backend of `faultline agent`'s process: what libraries record through swift-metrics
/// (Hummingbird's request metrics) goes to the agent's registry, under Prometheus names and with a HELP line, as
/// `promtool check metrics` asks (swift-prometheus's own factory writes none, and keeps the libraries' names).
struct LibraryMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    /// Gives the histogram buckets and removes metrics; made on the same registry.
    let prometheus: PrometheusMetricsFactory

    /// HELP texts of the metrics Hummingbird's MetricsMiddleware records, by their names here.
    static let helpTexts: [String: String] = [
        "hb_requests_total": "HTTP requests answered, by route, method and status code.",
        "hb_request_errors_total": "HTTP requests that ended in an error, by route, method and status code (error_type).",
        "http_server_request_duration_seconds": "How long answering an HTTP request took, by route, method and status code.",
        "http_server_active_requests": "HTTP requests being answered, by method.",
    ]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        prometheus = PrometheusMetricsFactory(registry: registry)
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label, suffix: "_total"), labels: Self.labels(dimensions))
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label, suffix: "_total"), labels: Self.labels(dimensions))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: Self.descriptor(label), labels: Self.labels(dimensions))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(descriptor: Self.descriptor(label), labels: Self.labels(dimensions)) }
        return registry.makeValueHistogram(descriptor: Self.descriptor(label), labels: Self.labels(dimensions),
                                           buckets: prometheus.valueHistogramBuckets[label] ?? prometheus.defaultValueHistogramBuckets)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(descriptor: Self.descriptor(label, suffix: "_seconds"), labels: Self.labels(dimensions),
                                       buckets: prometheus.durationHistogramBuckets[label] ?? prometheus.defaultDurationHistogramBuckets)
    }

    func destroyCounter(_ handler: any CounterHandler) { prometheus.destroyCounter(handler) }
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { prometheus.destroyFloatingPointCounter(handler) }
    func destroyMeter(_ handler: any MeterHandler) { prometheus.destroyMeter(handler) }
    func destroyRecorder(_ handler: any RecorderHandler) { prometheus.destroyRecorder(handler) }
    func destroyTimer(_ handler: any TimerHandler) { prometheus.destroyTimer(handler) }

    /// The Prometheus name of a swift-metrics label (`hb.requests` → `hb_requests_total`) and its HELP text; a metric
    /// without a text of its own says where it comes from.
    static func descriptor(_ label: String, suffix: String = "") -> MetricNameDescriptor {
        var name = prometheusName(label, colon: true)
        if !name.hasSuffix(suffix) { name += suffix }
        let help = helpTexts[name] ?? "Recorded through swift-metrics by a library of the agent."
        return MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Label names as Prometheus allows them: `http.route` → `http_route`.
    static func labels(_ dimensions: [(String, String)]) -> [(String, String)] {
        dimensions.map { (prometheusName($0.0, colon: false), $0.1) }
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` (no colon in label names): every other character becomes `_`.
    static func prometheusName(_ text: String, colon: Bool) -> String {
        var name = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar {
            case "a"..."z", "A"..."Z", "_": name.append(scalar)
            case ":" where colon: name.append(scalar)
            case "0"..."9" where !name.isEmpty: name.append(scalar)
            default: name.append("_")
            }
        }
        return name.isEmpty ? "_" : String(name)
    }
}
