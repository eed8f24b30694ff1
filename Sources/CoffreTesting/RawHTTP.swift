#if canImport(Glibc)
    import Glibc
#endif
public import Foundation

/// Raw HTTP/1.1 over a Unix socket, for requests a well-behaved client never sends: malformed
/// bodies, path tricks, uploads cut off mid-stream.
public enum RawHTTP {
    /// A parsed response.
    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data
        public var text: String { String(decoding: body, as: UTF8.self) }

        /// The problem document's `code`, if the body is one.
        public var problemCode: String? {
            guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else { return nil }
            return object["code"] as? String
        }
    }

    /// Builds a request with `Connection: close`.
    public static func request(
        _ method: String, _ path: String, headers: [String: String] = [:], body: Data = Data(), contentLength: Int? = nil
    ) -> Data {
        var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(contentLength ?? body.count)\r\n\r\n"
        return Data(text.utf8) + body
    }

    /// Sends `request`, then (unless `abortAfterSending`) reads the whole response.
    /// With `abortAfterSending`, closes the connection right after writing: an upload cut off.
    @discardableResult
    public static func exchange(socketPath: String, request: Data, abortAfterSending: Bool = false) throws -> Response {
        let fd = try connect(socketPath: socketPath)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        try request.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n <= 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EPIPE) }
                offset += n
            }
        }
        if abortAfterSending {
            // RST rather than FIN, like a client that died mid-upload.
            var lingerOff = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lingerOff, socklen_t(MemoryLayout<linger>.size))
            return Response(status: 0, headers: [:], body: Data())
        }
        var received = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            received.append(contentsOf: buffer[0..<n])
        }
        return try parse(received)
    }

    /// A connected socket to `socketPath` (the caller closes it): for requests held open, such
    /// as an upload that stalls half-way.
    public static func connect(socketPath: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        let connected: Int32
        do {
            connected = try UnixSocketAddress.with(socketPath) { Glibc.connect(fd, $0, $1) }
        } catch {
            close(fd)
            throw error
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
        return fd
    }

    static func parse(_ data: Data) throws -> Response {
        guard let split = data.range(of: Data("\r\n\r\n".utf8)) else { throw POSIXError(.EBADMSG) }
        let head = String(decoding: data[..<split.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = head.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw POSIXError(.EBADMSG) }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        var body = Data(data[split.upperBound...])
        if headers["transfer-encoding"]?.lowercased() == "chunked" { body = dechunk(body) }
        return Response(status: status, headers: headers, body: body)
    }

    static func dechunk(_ data: Data) -> Data {
        var out = Data()
        var rest = data[...]
        while let lineEnd = rest.range(of: Data("\r\n".utf8)) {
            let sizeText = String(decoding: rest[..<lineEnd.lowerBound], as: UTF8.self)
            guard let size = Int(sizeText.split(separator: ";").first ?? "", radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            guard rest.distance(from: start, to: rest.endIndex) >= size else { break }
            let end = rest.index(start, offsetBy: size)
            out.append(rest[start..<end])
            let next = rest.index(end, offsetBy: 2, limitedBy: rest.endIndex) ?? rest.endIndex
            rest = rest[next...]
        }
        return out
    }
}
