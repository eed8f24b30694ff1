#if canImport(Glibc)
    import Glibc
#endif
import NIOPosix

/// One round trip through the daemon's own request path: connect to its socket, `GET
/// /v1/health` (which reads the index), expect `200`.
///
/// It checks what a client needs, end to end: the listener accepts, an event loop parses, the
/// router and the Swift concurrency pool run the handler, the index answers. The blocking
/// socket calls run on the I/O thread pool, with timeouts, never on the concurrency pool.
struct HealthProbe: Sendable {
    let socketPath: String
    let pool: NIOThreadPool
    /// Longest wait for each of connect, send and receive.
    let timeoutSeconds: Int

    /// Whether the daemon answered `200` in time.
    func run() async -> Bool {
        let path = socketPath
        let timeout = timeoutSeconds
        return (try? await pool.runIfActive { Self.exchange(path: path, timeoutSeconds: timeout) }) ?? false
    }

    private static func exchange(path: String, timeoutSeconds: Int) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        // On a Unix stream socket, SO_SNDTIMEO also bounds connect() when the backlog is full.
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return false }
        let request = Array("GET /v1/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else { return false }
        // The status line is all the probe needs: "HTTP/1.1 200 ".
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 512)
        while received.count < 12 {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { return false }
            received += buffer[0..<n]
        }
        return received.starts(with: Array("HTTP/1.1 200".utf8))
    }
}
