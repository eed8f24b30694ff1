import CoffreAPI
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers what NIO's HTTP decoder cannot parse (a header block over the limit, a broken request
/// line, a bad Content-Length) like every other refusal: an `application/problem+json` body with
/// a stable code, reported to `onRefusal` (which traces it), then the connection is closed.
///
/// Without it Hummingbird answers these with a bare 400 and nothing reaches Coffre's trace. It
/// sits after the decoder, so it sees the decoder's errors before the request loop does. It
/// answers only between requests: an error inside one (a body cut short) is the route's to answer.
final class FramingErrorHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let onRefusal: @Sendable (Problem) -> Void
    /// Request heads read minus responses finished.
    private var responsesOwed = 0
    private var failed = false

    init(onRefusal: @escaping @Sendable (Problem) -> Void) {
        self.onRefusal = onRefusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }
        if case .head = unwrapInboundIn(data) { responsesOwed += 1 }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { responsesOwed -= 1 }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = Self.parserError(in: error) else {
            context.fireErrorCaught(error)
            return
        }
        if parserError == .invalidEOFState, responsesOwed == 0 {
            // The connection closed inside a request head (the client gave up, or the idle
            // timeout closed a client trickling its headers): no request was made, nobody is
            // left to answer, and nothing is traced (else each slow connection adds an entry).
            return
        }
        guard responsesOwed == 0 else {
            // A request is in progress (an upload cut short of its length, say): its body
            // stream fails and the route answers, as it always does.
            context.fireErrorCaught(error)
            return
        }
        // The decoder reports every later byte as an error too: answer the first only.
        guard !failed else { return }
        failed = true
        let problem = Self.problem(for: parserError)
        onRefusal(problem)
        let body = Self.encode(problem)
        var fields = HTTPFields()
        fields[.contentType] = Problem.mediaType
        fields[.contentLength] = "\(body.readableBytes)"
        fields[.connection] = "close"
        let status = HTTPResponse.Status(code: problem.status, reasonPhrase: Self.reasonPhrase(problem.status))
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    static func parserError(in error: any Error) -> HTTPParserError? {
        switch error {
        case let error as HTTPParserError: error
        case ByteToMessageDecoderError.dataReceivedInErrorState(let error as HTTPParserError, _): error
        default: nil
        }
    }

    static func problem(for error: HTTPParserError) -> Problem {
        switch error {
        case .headerOverflow:
            Problem(
                .headersTooLarge,
                detail: "the request's header block is larger than the \(SocketServerLimits.headerBytes / 1024) KiB accepted")
        default:
            Problem(.malformedRequest, detail: "the request is not valid HTTP/1.1 (\(error))")
        }
    }

    private static func encode(_ problem: Problem) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return ByteBuffer(bytes: (try? encoder.encode(problem)) ?? Data())
    }

    private static func reasonPhrase(_ status: Int) -> String {
        status == 431 ? "Request Header Fields Too Large" : "Bad Request"
    }
}

/// What one connection may send before Coffre's code sees a request.
enum SocketServerLimits {
    /// The whole header block; an assertion is at most 4 KiB and a title a few hundred bytes.
    static let headerBytes = 32 * 1024
    /// Header fields per request.
    static let headerFields = 256
}
