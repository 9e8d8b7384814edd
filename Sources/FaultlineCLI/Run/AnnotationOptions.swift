import ArgumentParser
import FaultlineCore
import FaultlineEngine

/// Where runs are shown besides the run's own output: Grafana annotations (`run` and `agent`).
struct AnnotationOptions: ParsableArguments {
    @Option(help: "Grafana's base URL: each fault window and each abort becomes an annotation tagged faultline, the scenario and the fault.")
    var grafanaUrl: String?

    @Option(help: "A file holding a Grafana service-account token (mode 0600; env FAULTLINE_GRAFANA_TOKEN holds the token itself).")
    var grafanaTokenFile: String?

    func validate() throws {
        if let grafanaUrl, !(grafanaUrl.hasPrefix("http://") || grafanaUrl.hasPrefix("https://")) {
            throw ValidationError("--grafana-url '\(grafanaUrl)' is not an http:// or https:// URL")
        }
    }

    /// The Grafana settings, or nil without --grafana-url.
    func grafana() throws(FaultlineError) -> GrafanaAnnotator.Settings? {
        guard let grafanaUrl else { return nil }
        return GrafanaAnnotator.Settings(url: grafanaUrl, token: try TokenOptions.secret(file: grafanaTokenFile, environment: "FAULTLINE_GRAFANA_TOKEN"))
    }
}
