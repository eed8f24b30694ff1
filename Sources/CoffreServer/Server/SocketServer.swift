#if canImport(Glibc)
    import Glibc
#endif
public import Hummingbird
import HummingbirdCore
public import Logging
public import NIOCore
import NIOExtras
public import NIOPosix
public import ServiceLifecycle
import Synchronization
public import CoffreAPI
import CoffreStore

/// The daemon's HTTP server: Hummingbird's HTTP/1.1 channel and Coffre's router, on a Unix
/// socket that systemd passed or that the server binds itself.
///
/// Hummingbird's own `Server` binds only addresses and paths; it cannot adopt a descriptor that
/// systemd bound. This is the same accept loop built from Hummingbird's and NIO's public pieces
/// (`ServerBootstrap.bind(_:)` for an inherited socket, `HTTP1Channel` for each connection,
/// `ServerQuiescingHelper` for the graceful stop), so that both ways in share one code path,
/// and that path is the one systemd uses. See docs/architecture.md, "Serving".
///
/// On graceful shutdown (SIGTERM): stop accepting, let every request in flight finish, close
/// idle connections; after `gracePeriod`, cancel what is still running. A cancelled upload ends
/// as an incomplete upload: its temporary file is removed and nothing is stored.
public struct SocketServer<Responder: HTTPResponder>: Service where Responder.Context == CoffreRequestContext {
    let responder: Responder
    let socket: ListenSocket
    let socketMode: UInt32
    let gracePeriod: Duration
    let idleTimeout: Duration
    let transfers: TransferLimits
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    let events: SocketServerEvents

    /// A server for `responder` on `socket`.
    /// - Parameters:
    ///   - socketMode: permissions given to a socket the server binds itself (systemd sets its own).
    ///   - gracePeriod: how long requests in flight may run after SIGTERM before they are aborted.
    ///   - idleTimeout: how long a connection may go without a complete request head (idle
    ///     between requests, or trickling its headers) before it is closed.
    public init(
        responder: Responder,
        socket: ListenSocket,
        socketMode: UInt32,
        gracePeriod: Duration,
        idleTimeout: Duration,
        transfers: TransferLimits = TransferLimits(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger,
        events: SocketServerEvents
    ) {
        self.responder = responder
        self.socket = socket
        self.socketMode = socketMode
        self.gracePeriod = gracePeriod
        self.idleTimeout = idleTimeout
        self.transfers = transfers
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.events = events
    }

    /// Serves until the graceful shutdown has drained every connection (or the grace period ran out).
    public func run() async throws {
        let quiescing = ServerQuiescingHelper(group: eventLoopGroup)
        let adapter = HTTPResponderAdapter(responder: responder, logger: logger)
        let refused = events.refused
        let (transfers, logger) = (self.transfers, self.logger)
        let tooSlow: @Sendable (Int) -> Void = { bytes in
            logger.notice(
                "connection closed: its transfer was slower than the minimum rate",
                metadata: [
                    "transfer.bytes": "\(bytes)", "transfer.window_seconds": "\(transfers.rateWindow.components.seconds)",
                    "transfer.minimum_bytes_per_second": "\(transfers.minimumBytesPerSecond)",
                ])
        }
        // Hummingbird's idle timeout closes a connection with no request in progress once it has
        // been quiet that long: a client trickling its headers never completes a request head,
        // so it is closed too (slowloris), while a long upload or download is never cut.
        let connection = HTTP1Channel(
            responder: { request, writer, channel in
                try await adapter.respond(to: request, writer: writer, channel: channel)
            },
            configuration: .init(
                additionalChannelHandlers: [
                    FramingErrorHandler(onRefusal: refused),
                    TransferRateHandler(
                        minimumBytesPerSecond: transfers.minimumBytesPerSecond, window: TimeAmount(transfers.rateWindow),
                        onClosed: tooSlow),
                ],
                idleTimeout: TimeAmount(idleTimeout),
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: SocketServerLimits.headerBytes, maxHeaderListSize: SocketServerLimits.headerBytes,
                    maxHeaderFieldCount: SocketServerLimits.headerFields)))
        let server = try await bind(connection, quiescing: quiescing)
        await events.listening(socket)

        let gracePeriod = self.gracePeriod
        let events = self.events
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await withDiscardingTaskGroup { connections in
                    do {
                        try await server.executeThenClose { inbound in
                            for try await channel in inbound {
                                connections.addTask { await connection.handle(value: channel, logger: logger) }
                            }
                        }
                    } catch {
                        logger.error("the listening socket failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            group.addTask {
                // Returns when SIGTERM/SIGINT starts the graceful shutdown; throws if cancelled.
                try await gracefulShutdown()
                events.stopping()
                quiescing.initiateShutdown(promise: nil)
                try await Task.sleep(for: gracePeriod)
                events.forced()
                logger.warning(
                    "requests still in flight after the grace period are aborted",
                    metadata: CoffreEvent.shutdownForced.metadata(["shutdown.grace_seconds": "\(gracePeriod.components.seconds)"]))
                throw CancellationError()
            }
            // The accept loop ends once quiescing has closed the listener and every connection
            // is done; the grace timer then has nothing left to do.
            do {
                try await group.next()
            } catch is CancellationError {
                // Grace period over: cancelling the connections aborts their requests.
            }
            group.cancelAll()
            while (try? await group.next()) != nil {}
        }
    }

    private func bind(
        _ connection: HTTP1Channel, quiescing: ServerQuiescingHelper
    ) async throws -> NIOAsyncChannel<HTTP1Channel.Value, Never> {
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
        switch socket {
        case .inherited(let descriptor, let path):
            let server = try await bootstrap.bind(descriptor) { connection.setup(channel: $0, logger: logger) }
            logger.info("listening on the socket systemd passed", metadata: ["socket.path": "\(path)"])
            return server
        case .path(let path):
            let server = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) {
                connection.setup(channel: $0, logger: logger)
            }
            // Bound under umask 077; opened up to the daemon's group on purpose.
            if chmod(path, mode_t(socketMode)) != 0 {
                logger.error("cannot set the socket's permissions", metadata: ["socket.path": "\(path)", "errno": "\(errno)"])
            }
            logger.info("listening on a socket of its own", metadata: ["socket.path": "\(path)"])
            return server
        }
    }
}

/// What a `SocketServer` reports as its life goes on; the daemon turns these into `sd_notify`
/// messages and log events.
public struct SocketServerEvents: Sendable {
    /// The socket accepts connections.
    public var listening: @Sendable (ListenSocket) async -> Void
    /// The graceful shutdown began: no new connections.
    public var stopping: @Sendable () -> Void
    /// The grace period ran out and requests in flight were cancelled.
    public var forced: @Sendable () -> Void
    /// A request was refused before it reached the router (HTTP framing, header limits).
    public var refused: @Sendable (Problem) -> Void

    /// Events with the given reactions.
    public init(
        listening: @escaping @Sendable (ListenSocket) async -> Void,
        stopping: @escaping @Sendable () -> Void,
        forced: @escaping @Sendable () -> Void,
        refused: @escaping @Sendable (Problem) -> Void = { _ in }
    ) {
        self.listening = listening
        self.stopping = stopping
        self.forced = forced
        self.refused = refused
    }
}
