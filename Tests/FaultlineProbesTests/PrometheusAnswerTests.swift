@testable import FaultlineProbes
import FaultlineCore
import Foundation
import Testing

/// What Prometheus's HTTP API answers, read into one value or a plain message (bodies as Prometheus 2.42 writes them).
@Suite struct PrometheusAnswerTests {
    func value(_ json: String, status: Int = 200) -> Result<Double, ProbeFailure> {
        do throws(ProbeFailure) { return .success(try PrometheusQuery.value(from: Data(json.utf8), status: status)) } catch { return .failure(error) }
    }

    func message(_ json: String, status: Int = 200) -> String {
        if case .failure(let failure) = value(json, status: status) { return failure.message }
        return "no failure"
    }

    @Test("a vector of one series with its labels, as every real series has")
    func vectorWithLabels() throws {
        let json = #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up","instance":"127.0.0.1:19090","job":"self"},"value":[1796193144.086,"1"]}]}}"#
        #expect(try value(json).get() == 1)
        let summed = #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796193144.086,"0.25"]}]}}"#
        #expect(try value(summed).get() == 0.25)
    }

    @Test("a scalar, and the special values")
    func scalarAndSpecialValues() throws {
        #expect(try value(#"{"status":"success","data":{"resultType":"scalar","result":[1796193144.1,"2.5e-3"]}}"#).get() == 0.0025)
        #expect(try value(#"{"status":"success","data":{"resultType":"scalar","result":[1796193144.1,"+Inf"]}}"#).get() == .infinity)
        #expect(try value(#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1.0,"-Inf"]}]}}"#).get() == -.infinity)
        let nan = message(#"{"status":"success","data":{"resultType":"scalar","result":[1796193144.1,"NaN"]}}"#)
        #expect(nan.hasPrefix("the query gave NaN"), "\(nan)")
    }

    @Test("no data, several series, a matrix and a string are refused with what to do")
    func refusedShapes() {
        #expect(message(#"{"status":"success","data":{"resultType":"vector","result":[]}}"#) == "the query returned no data (no series matched)")
        let two = #"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"code":"200"},"value":[1,"1"]},{"metric":{"code":"500"},"value":[1,"2"]}]}}"#
        #expect(message(two) == #"the query returned 2 series ({code="200"}, {code="500"}); aggregate it (sum(...)) to one"#)
        #expect(message(#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#).contains("range vector (matrix)"))
        #expect(message(#"{"status":"success","data":{"resultType":"string","result":[1,"hi"]}}"#) == "the query gives a string, not a number")
    }

    @Test("an error answer gives Prometheus's own errorType and error; a non-API answer says so")
    func errors() {
        let refused = #"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:7: parse error: unclosed left parenthesis"}"#
        #expect(message(refused, status: 400) == #"Prometheus refused the query (bad_data): invalid parameter "query": 1:7: parse error: unclosed left parenthesis"#)
        #expect(message("Unauthorized\n", status: 401).hasPrefix("status 401, and the answer is not a Prometheus API answer"))
        #expect(message("<html>Grafana</html>", status: 200).contains("is the URL the server's base URL?"))
        #expect(message("{}", status: 502) == "status 502 from Prometheus")
    }

    @Test("the query URL keeps '+' as '+' (servers read a raw '+' as a space)")
    func queryURL() throws {
        let url = try #require(PrometheusQuery.url(base: "http://127.0.0.1:9090/", query: #"up{job="a"} + 1"#))
        #expect(url == "http://127.0.0.1:9090/api/v1/query?query=up%7Bjob%3D%22a%22%7D%20%2B%201" || url == "http://127.0.0.1:9090/api/v1/query?query=up%7Bjob=%22a%22%7D%20%2B%201", "\(url)")
        #expect(PrometheusQuery.url(base: "http://prom.example:9090/prometheus", query: "up")?.hasPrefix("http://prom.example:9090/prometheus/api/v1/query?") == true)
    }

    @Test("credentials are read when the probe runs: a bearer token from a file (first line, trimmed) or the environment, basic auth")
    func credentials() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("faultline-token-\(UInt32.random(in: 0 ... .max))").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try "s3cret-token\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try PrometheusQuery.authorization(.bearer(.file(file))) == "Bearer s3cret-token")
        #expect(try PrometheusQuery.authorization(.bearer(.environment("PROM_TOKEN")), environment: ["PROM_TOKEN": "abc"]) == "Bearer abc")
        #expect(try PrometheusQuery.authorization(.basic(username: "faultline", password: .environment("P")), environment: ["P": "pw"])
                == "Basic " + Data("faultline:pw".utf8).base64EncodedString())
        #expect(throws: ProbeFailure.self) { try PrometheusQuery.authorization(.bearer(.environment("UNSET")), environment: [:]) }
        do throws(ProbeFailure) {
            _ = try PrometheusQuery.authorization(.bearer(.file(file + ".missing")))
            Issue.record("a missing file is an error")
        } catch {
            #expect(error.message == "cannot read the secret from file \(file).missing: No such file or directory")
        }
    }
}
