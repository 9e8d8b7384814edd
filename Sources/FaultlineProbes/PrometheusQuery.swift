import FaultlineCore
import Foundation

/// What a Prometheus server's HTTP API answers to an instant query (`/api/v1/query`), read into one number.
///
/// Prometheus answers `{"status": "success", "data": {"resultType": T, "result": R}}` where R is, by type:
/// `vector` — a list of `{"metric": {labels}, "value": [time, "text"]}`; `scalar` and `string` — `[time, "text"]`;
/// `matrix` — a list of `{"metric": {labels}, "values": [[time, "text"], ...]}`. Numbers are strings, with `NaN`,
/// `+Inf` and `-Inf` for the special values. A refused query is `{"status": "error", "errorType": E, "error": M}`,
/// usually with HTTP status 400, 422 or 503.
enum PrometheusQuery {
    /// The one value of an instant query's answer: a scalar, or a vector of exactly one series. Infinite values are
    /// values; NaN is not (it fails with a message that says what it usually means).
    static func value(from body: Data, status: Int) throws(ProbeFailure) -> Double {
        guard let answer = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            let text = String(decoding: body.prefix(120), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ProbeFailure("status \(status), and the answer is not a Prometheus API answer (is the URL the server's base URL?)"
                + (text.isEmpty ? "" : ": \(text)"))
        }
        if answer["status"] as? String == "error" || status != 200 {
            let kind = answer["errorType"] as? String
            let message = answer["error"] as? String
            if kind == nil && message == nil { throw ProbeFailure("status \(status) from Prometheus") }
            throw ProbeFailure("Prometheus refused the query" + (kind.map { " (\($0))" } ?? "") + ": " + (message ?? "status \(status)"))
        }
        guard answer["status"] as? String == "success", let data = answer["data"] as? [String: Any],
              let type = data["resultType"] as? String else {
            throw ProbeFailure("the answer has no query result (status '\(answer["status"] ?? "none")')")
        }
        let sample: Any?
        switch type {
        case "scalar":
            sample = data["result"]
        case "vector":
            guard let series = data["result"] as? [[String: Any]] else { throw ProbeFailure("the vector result is not a list of series") }
            guard series.count == 1 else {
                if series.isEmpty { throw ProbeFailure("the query returned no data (no series matched)") }
                let shown = series.prefix(3).map { labels(of: $0) }.joined(separator: ", ")
                throw ProbeFailure("the query returned \(series.count) series (\(shown)\(series.count > 3 ? ", ..." : "")); aggregate it (sum(...)) to one")
            }
            sample = series[0]["value"]
        case "matrix":
            throw ProbeFailure("the query gives a range vector (matrix), not one number: make it an instant query, e.g. rate(x[1m]) instead of x[1m]")
        case "string":
            throw ProbeFailure("the query gives a string, not a number")
        default:
            throw ProbeFailure("unknown result type '\(type)'")
        }
        guard let pair = sample as? [Any], pair.count == 2, let text = pair[1] as? String else {
            throw ProbeFailure("the \(type) result has no [time, value] sample")
        }
        guard let value = number(text) else { throw ProbeFailure("the value '\(text)' is not a number") }
        if value.isNaN {
            throw ProbeFailure("the query gave NaN (not a number: e.g. a ratio of two zero rates, when nothing happened in the window)")
        }
        return value
    }

    /// A sample's text as a number: decimals, `NaN`, `+Inf`, `-Inf` (as Prometheus writes them).
    static func number(_ text: String) -> Double? {
        switch text {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            guard text.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true else { return nil }
            return Double(text)
        }
    }

    /// `{job="self", instance="..."}` for a series, `{}` for none.
    static func labels(of series: [String: Any]) -> String {
        let metric = series["metric"] as? [String: String] ?? [:]
        return "{" + metric.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ", ") + "}"
    }

    /// `base/api/v1/query?query=...`, or nil when the base URL cannot take the path.
    static func url(base: String, query: String) -> String? {
        var components = URLComponents(string: base.hasSuffix("/") ? String(base.dropLast()) : base)
        components?.path += "/api/v1/query"
        components?.queryItems = [URLQueryItem(name: "query", value: query)]
        // URLComponents leaves '+' alone in a query, where servers read it as a space: PromQL has `a + b`.
        let encoded = components?.percentEncodedQuery?.replacingOccurrences(of: "+", with: "%2B")
        components?.percentEncodedQuery = encoded
        return components?.url?.absoluteString
    }

    /// The `Authorization` header value for `auth`, with the secret read now.
    static func authorization(_ auth: PrometheusAuth, environment: [String: String] = ProcessInfo.processInfo.environment) throws(ProbeFailure) -> String {
        switch auth {
        case .bearer(let source):
            return "Bearer " + (try secret(source, environment: environment))
        case .basic(let username, let password):
            let pair = username + ":" + (try secret(password, environment: environment))
            return "Basic " + Data(pair.utf8).base64EncodedString()
        }
    }

    /// A secret's value: the file's first line or the variable, trimmed; an absent or empty secret is an error that names it.
    static func secret(_ source: SecretSource, environment: [String: String]) throws(ProbeFailure) -> String {
        let raw: String
        switch source {
        case .file(let path):
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw ProbeFailure("cannot read the secret from \(source): \(String(cString: strerror(errno)))")
            }
            defer { try? handle.close() }
            let data = (try? handle.read(upToCount: 64 << 10)) ?? Data()
            raw = String(decoding: data, as: UTF8.self).split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        case .environment(let name):
            guard let value = environment[name] else { throw ProbeFailure("the secret's \(source) is not set") }
            raw = value
        }
        let value = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !value.isEmpty else { throw ProbeFailure("the secret from \(source) is empty") }
        guard !value.contains(where: { $0.isNewline || $0 == "\0" }) else { throw ProbeFailure("the secret from \(source) has control characters") }
        return value
    }
}
