#if canImport(Glibc)
    import Glibc
#endif
public import CoffreDomain
import CSystemd

/// Where the daemon's listening socket comes from: handed over by systemd (`coffred.socket`,
/// or `systemd-socket-activate`), or bound by the daemon itself at a path.
public enum ListenSocket: Sendable, Equatable {
    /// A bound, listening Unix stream socket passed by systemd, and the path it is bound to.
    case inherited(descriptor: Int32, path: String)
    /// A path the daemon binds itself (and then opens to its group with `chmod`).
    case path(String)

    /// The socket's path in the file system.
    public var path: String {
        switch self {
        case .inherited(_, let path), .path(let path): path
        }
    }

    /// The socket systemd passed (`LISTEN_FDS`, `LISTEN_PID`), or a socket the daemon binds at
    /// `fallbackPath` when there is none.
    ///
    /// `sd_listen_fds(1)` also unsets the variables, so that nothing the daemon might start
    /// inherits them. Coffre listens on exactly one Unix stream socket: anything else is a
    /// mistake in the unit, refused rather than guessed at.
    public static func fromSystemd(orBind fallbackPath: String) throws(ServerError) -> ListenSocket {
        let count = sd_listen_fds(1)
        if count < 0 {
            throw ServerError(.socket, "cannot read the sockets systemd passed (LISTEN_FDS)", errno: -count)
        }
        if count == 0 { return .path(fallbackPath) }
        guard count == 1 else {
            throw ServerError(.socket, "systemd passed \(count) sockets; coffred.socket must have exactly one ListenStream=")
        }
        let descriptor = SD_LISTEN_FDS_START
        guard sd_is_socket_unix(descriptor, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
            throw ServerError(.socket, "the socket systemd passed is not a listening Unix stream socket (ListenStream=/path)")
        }
        guard let path = boundPath(of: descriptor) else {
            throw ServerError(.socket, "the socket systemd passed is not bound to a path in the file system")
        }
        return .inherited(descriptor: descriptor, path: path)
    }

    /// The path a Unix socket is bound to (`getsockname`); nil for an abstract or unnamed one.
    static func boundPath(of descriptor: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return nil }
        let path = withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return path.hasPrefix("/") ? path : nil
    }
}
