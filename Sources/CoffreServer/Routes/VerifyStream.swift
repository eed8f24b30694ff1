import CoffreAPI
import CoffreStore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// `coffre admin verify` reads every blob to its end, which takes minutes on a large vault. Asked
/// with `Accept: application/x-ndjson`, the answer streams a `VerifyProgress` line about every
/// quarter second, then the `VerifyReport` line, so the client can draw a bar; otherwise the
/// report comes whole, as JSON.
enum VerifyStream {
    static let mediaType = "application/x-ndjson"

    static func report(
        _ verification: Verification, progress: (@Sendable (_ checked: Int, _ total: Int) async -> Void)?
    ) async throws -> VerifyReport {
        let (contents, trace) = try await verification.run(progress: progress)
        let problems = contents.problems + trace.problems
        return VerifyReport(
            ok: problems.isEmpty, dossiersChecked: contents.dossiersChecked, documentsChecked: contents.documentsChecked,
            orphanBlobs: contents.orphanBlobs, traceEntriesChecked: trace.entriesChecked,
            traceCheckpointsChecked: trace.checkpointsChecked, traceAnchorsChecked: trace.anchorsChecked,
            firstBrokenTraceEntry: trace.firstBrokenSeq, problems: problems,
            traceSigningKey: trace.signingKey)
    }

    /// The streamed answer. The check runs in a task of its own that stops if the client goes.
    static func response(_ verification: Verification, logger: Logger) -> Response {
        let (lines, continuation) = AsyncStream.makeStream(of: ByteBuffer.self)
        let pacer = Pacer(every: .milliseconds(250))
        let task = Task {
            do {
                let report = try await report(verification) { checked, total in
                    if pacer.due() || checked == total { continuation.yield(line(VerifyProgress(checked: checked, total: total))) }
                }
                continuation.yield(line(report))
            } catch {
                // The status line is sent already: the failure is the last line, a problem.
                let problem = ProblemMiddleware.problem(for: error)
                logger.error(
                    "verification stopped before its end", metadata: CoffreEvent.requestRefused.metadata(["error": "\(error)"]))
                continuation.yield(line(problem))
            }
            continuation.finish()
        }
        continuation.onTermination = { _ in task.cancel() }
        var headers = HTTPFields()
        headers[.contentType] = mediaType
        return Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: lines))
    }

    static func line<T: Encodable>(_ value: T) -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes = (try? encoder.encode(value)) ?? Data("{}".utf8)
        bytes.append(UInt8(ascii: "\n"))
        return ByteBuffer(bytes: bytes)
    }
}
