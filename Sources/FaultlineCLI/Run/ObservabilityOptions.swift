import ArgumentParser
import FaultlineCore
import FaultlineEngine
import Logging

/// Where runs are shown besides the run's own output (`run` and `agent`): Grafana annotations, traces over OTLP,
/// and webhooks for every run.
struct ObservabilityOptions: ParsableArguments {
    @Option(help: "Grafana's base URL: each fault window and each abort becomes an annotation tagged faultline, the scenario and the fault.")
    var grafanaUrl: String?

    @Option(help: "A file holding a Grafana service-account token (mode 0600; env FAULTLINE_GRAFANA_TOKEN holds the token itself).", completion: .file())
    var grafanaTokenFile: String?

    @Option(help: ArgumentHelp("Send traces (a span per run, per fault and per probe request) to this OTLP endpoint, e.g. http://collector:4318; default: env OTEL_EXPORTER_OTLP_ENDPOINT, else no traces. OTEL_EXPORTER_OTLP_PROTOCOL picks grpc, http/protobuf (default) or http/json.", valueName: "url"))
    var otlpEndpoint: String?

    @Option(help: ArgumentHelp("A webhook URL that gets a JSON message at every run's start, abort, failed revert and end, besides the scenario's notify (repeatable).", valueName: "url"))
    var notify: [String] = []

    func validate() throws {
        for (flag, url) in [("--grafana-url", grafanaUrl), ("--otlp-endpoint", otlpEndpoint)] + notify.map({ ("--notify", $0) }) {
            if let url, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                throw ValidationError("\(flag) '\(url)' is not an http:// or https:// URL")
            }
        }
    }

    /// The Grafana settings, or nil without --grafana-url.
    func grafana() throws(FaultlineError) -> GrafanaAnnotator.Settings? {
        guard let grafanaUrl else { return nil }
        return GrafanaAnnotator.Settings(url: grafanaUrl, token: try TokenOptions.secret(file: grafanaTokenFile, environment: "FAULTLINE_GRAFANA_TOKEN"))
    }

    /// The trace exporter (it sends while `around` runs) when --otlp-endpoint or the OTEL_* environment asks for one; its complaints
    /// (a collector that does not answer) go to stderr as warnings.
    func traces() throws -> TraceExport? {
        var warnings = Logger(label: "faultline.traces", factory: { StreamLogHandler.standardError(label: $0) })
        warnings.logLevel = Logger.Level.warning
        return try TraceExport.start(endpoint: otlpEndpoint, version: Faultline.configuration.version, warnings: warnings)
    }
}
