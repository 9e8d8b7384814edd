import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// One JSON request to an outside service, bounded in time; the answer's status and body.
enum OutboundHTTP {
    static func exchange(_ method: HTTPMethod, _ url: String, json: Data, headers: [(String, String)] = [],
                         timeout: Duration) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "faultline")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: json))
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(nanoseconds))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Data(body.readableBytesView))
    }
}
