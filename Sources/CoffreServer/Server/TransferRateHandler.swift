import NIOCore
import NIOHTTPTypes

/// Closes a connection whose client keeps a transfer going slower than a minimum rate.
///
/// An upload or a download in progress holds memory and key-arena slots. The idle timeout only
/// closes a connection with no request in progress, so without this a client sending one byte a
/// second, or reading one, would hold them forever, and a few thousand such clients would fill
/// the arena. Every `window`, a connection with a request in progress is judged: if the daemon
/// spent at least half of it waiting for the client (wanting more of the request body and
/// getting none, or unable to write because the client does not read) and fewer than
/// `minimumBytesPerSecond × window` body bytes moved, the connection is closed. The route sees
/// its body or its writer fail, and cleans up as for any client that goes away. Time the
/// daemon itself takes (a slow disk, a long verification) never counts against the client.
final class TransferRateHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let minimumBytesPerSecond: Int
    let window: TimeAmount
    /// Told when a connection is closed for being too slow (the daemon logs it).
    let onClosed: @Sendable (_ bytes: Int) -> Void

    /// Request heads read minus responses ended.
    private var requestsInProgress = 0
    /// Between a request's head and its end: the daemon may be waiting for body bytes.
    private var readingBody = false
    private var bytesMoved = 0
    private var waited: TimeAmount = .zero
    /// When the daemon asked for more of a request body and got nothing since.
    private var readWantedSince: NIODeadline?
    /// When the client stopped reading (the channel became unwritable).
    private var unwritableSince: NIODeadline?
    private var check: RepeatedTask?

    init(minimumBytesPerSecond: Int, window: TimeAmount, onClosed: @escaping @Sendable (_ bytes: Int) -> Void) {
        self.minimumBytesPerSecond = minimumBytesPerSecond
        self.window = window
        self.onClosed = onClosed
    }

    func handlerAdded(context: ChannelHandlerContext) {
        guard minimumBytesPerSecond > 0 else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        check = context.eventLoop.scheduleRepeatedTask(initialDelay: window, delay: window) { _ in
            let (handler, context) = loopBound.value
            handler.judge(context: context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            requestsInProgress += 1
            readingBody = true
        case .body(let buffer):
            bytesMoved += buffer.readableBytes
        case .end:
            readingBody = false
        }
        stopWaiting(since: &readWantedSince)
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        if readingBody && readWantedSince == nil { readWantedSince = .now() }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: break
        case .body(let buffer): bytesMoved += buffer.readableBytes
        case .end: requestsInProgress = max(0, requestsInProgress - 1)
        }
        context.write(data, promise: promise)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            stopWaiting(since: &unwritableSince)
        } else if unwritableSince == nil {
            unwritableSince = .now()
        }
        context.fireChannelWritabilityChanged()
    }

    private func stopWaiting(since start: inout NIODeadline?) {
        if let started = start { waited = waited + (.now() - started) }
        start = nil
    }

    private func judge(context: ChannelHandlerContext) {
        // Waits still going on count up to now.
        let now = NIODeadline.now()
        for since in [readWantedSince, unwritableSince].compactMap({ $0 }) { waited = waited + (now - since) }
        if readWantedSince != nil { readWantedSince = now }
        if unwritableSince != nil { unwritableSince = now }
        let floor = Int64(minimumBytesPerSecond) * window.nanoseconds / 1_000_000_000
        // A body still being read after its answer went out (an early refusal) counts too.
        let tooSlow = (requestsInProgress > 0 || readingBody) && waited.nanoseconds * 2 >= window.nanoseconds && Int64(bytesMoved) < floor
        let moved = bytesMoved
        (bytesMoved, waited) = (0, .zero)
        guard tooSlow else { return }
        check?.cancel()
        onClosed(moved)
        context.close(promise: nil)
    }
}
