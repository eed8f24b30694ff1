#if canImport(Glibc)
    import Glibc
#endif
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Turns Coffre's router into the function `HTTP1Channel` calls for each request: what
/// Hummingbird's `Application.run` does, minus what the daemon does not use (the per-second date
/// cache service, the server-name option).
///
/// Every request gets a `CoffreRequestContext` over its connection (for `SO_PEERCRED`) and a
/// logger carrying a request id; an error no middleware turned into an answer becomes a bare 500.
struct HTTPResponderAdapter<Responder: HTTPResponder>: Sendable where Responder.Context == CoffreRequestContext {
    let responder: Responder
    let logger: Logger

    @Sendable func respond(to request: Request, writer: consuming ResponseWriter, channel: any Channel) async throws {
        var requestLogger = logger
        requestLogger[metadataKey: "hb.request.id"] = .stringConvertible(RequestID())
        let context = CoffreRequestContext(source: .init(channel: channel, logger: requestLogger))
        var response: Response
        do {
            response = try await responder.respond(to: request, context: context)
        } catch let error as HTTPParserError {
            // Bad HTTP framing: HTTP1Channel answers 400 and closes the connection.
            throw error
        } catch {
            requestLogger.debug("unhandled error", metadata: ["error.type": "\(type(of: error))"])
            response = Response(status: .internalServerError)
        }
        response.headers[.date] = Self.httpDate()
        response.headers[.server] = "coffred"
        try await writer.write(response: response.head, body: response.body)
    }

    /// The current time in the format of RFC 9110 (`Sun, 06 Nov 1994 08:49:37 GMT`).
    static func httpDate() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 40)
        let count = strftime(&buffer, buffer.count, "%a, %d %b %Y %H:%M:%S GMT", &parts)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
