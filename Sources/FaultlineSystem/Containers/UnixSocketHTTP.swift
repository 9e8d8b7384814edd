import FaultlineCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A GET over a unix socket (a container runtime's API): HTTP/1.0, so the answer is the body up to the close, with
/// chunked transfer decoded should a server use it anyway. Blocking, with a timeout on each read and write: run it
/// off the cooperative pool (`get`).
public enum UnixSocketHTTP {
    public struct Response: Sendable {
        public var status: Int
        public var body: Data
        /// Header lines as sent (`Name: value`).
        public var headers: [String] = []

        /// The value of header `name` (case-insensitive), if sent.
        public func header(_ name: String) -> String? {
            headers.first { $0.lowercased().hasPrefix(name.lowercased() + ":") }
                .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
        }
    }

    /// `GET path` on the socket at `socket`.
    public static func get(socket: String, path: String, timeout: Duration = .seconds(5)) async throws(FaultlineError) -> Response {
        let result: Result<Response, FaultlineError> = await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(returning: Result { () throws(FaultlineError) -> Response in
                    try getBlocking(socket: socket, path: path, timeout: timeout)
                })
            }
        }
        return try result.get()
    }

    static func getBlocking(socket path: String, path requestPath: String, timeout: Duration) throws(FaultlineError) -> Response {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw FaultlineError(.usage, "the socket path '\(path)' is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw FaultlineError(.io, "cannot make a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let seconds = timeout.components.seconds
        var limit = timeval(tv_sec: Int(seconds), tv_usec: Int(timeout.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            throw FaultlineError(.io, "cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
        let request = Array("GET \(requestPath) HTTP/1.0\r\nHost: localhost\r\nUser-Agent: faultline\r\nAccept: application/json\r\n\r\n".utf8)
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw FaultlineError(.io, "cannot write to \(path): \(String(cString: strerror(errno)))") }
            sent += n
        }
        var answer = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n == 0 { break }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else {
                let code = errno
                throw FaultlineError(.io, code == EAGAIN || code == EWOULDBLOCK ? "\(path) did not answer within \(timeout)" : "cannot read from \(path): \(String(cString: strerror(code)))")
            }
            answer.append(contentsOf: buffer[0..<n])
            guard answer.count < 16 << 20 else { throw FaultlineError(.io, "\(path) answered more than 16 MiB") }
        }
        return try parse(answer, from: path)
    }

    /// The status and body of a whole HTTP answer.
    static func parse(_ answer: Data, from path: String) throws(FaultlineError) -> Response {
        guard let end = answer.firstRange(of: Data("\r\n\r\n".utf8)) else {
            throw FaultlineError(.io, "\(path) gave no HTTP answer")
        }
        let head = String(decoding: answer[..<end.lowerBound], as: UTF8.self).split(separator: "\r\n")
        let words = head.first?.split(separator: " ") ?? []
        guard words.count >= 2, words[0].hasPrefix("HTTP/"), let status = Int(words[1]) else {
            throw FaultlineError(.io, "\(path) gave no HTTP status line")
        }
        var body = Data(answer[end.upperBound...])
        let chunked = head.dropFirst().contains { $0.lowercased().hasPrefix("transfer-encoding:") && $0.lowercased().contains("chunked") }
        if chunked { body = try dechunk(body, from: path) }
        return Response(status: status, body: body, headers: head.dropFirst().map(String.init))
    }

    static func dechunk(_ data: Data, from path: String) throws(FaultlineError) -> Data {
        var result = Data()
        var index = data.startIndex
        while let line = data[index...].firstRange(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: data[index..<line.lowerBound], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw FaultlineError(.io, "\(path) sent a bad chunk")
            }
            if size == 0 { return result }
            let start = line.upperBound
            guard data.distance(from: start, to: data.endIndex) >= size else { throw FaultlineError(.io, "\(path) sent a short chunk") }
            let stop = data.index(start, offsetBy: size)
            result.append(data[start..<stop])
            index = min(data.index(stop, offsetBy: 2, limitedBy: data.endIndex) ?? data.endIndex, data.endIndex)
        }
        return result
    }
}
