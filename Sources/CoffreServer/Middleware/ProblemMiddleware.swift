import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import Logging
import NIOCore

/// Turns every error into an `application/problem+json` answer with a stable code, in one
/// place. An error nobody anticipated becomes `internal_error` with no internal detail sent.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = CoffreRequestContext
    let refusals: RefusalRecorder
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            var role = context.actor?.role
            var error = error
            if let refused = error as? RefusedAfterAssertion { (role, error) = (refused.role, refused.error) }
            let problem = Self.problem(for: error)
            // The pipeline traced its refusals; anything else failed before any decision (or, rarely,
            // after an allowed decision's entry: a store cut short, a change a concurrent one made
            // illegal) and is counted, with its error code (a connection that keeps sending
            // requests nobody vouched for waits for its answers).
            if !(error is Refusal) {
                let refusal = AnonymousRefusal(
                    action: "\(request.method.rawValue) \(context.endpointPath ?? "unmatched")", errorCode: problem.code.rawValue,
                    role: role?.rawValue, serverSide: problem.status >= 500)
                let pause = refusals.refused(refusal, on: context.channel)
                if pause > .zero { try? await Task.sleep(for: pause) }
            }
            // The route template, never the path: paths carry the patient's INS.
            logger.log(
                level: problem.status >= 500 ? .error : .notice,
                "request refused",
                metadata: (problem.code == .integrityError ? CoffreEvent.integrityFailure : CoffreEvent.requestRefused).metadata([
                    "http.method": "\(request.method.rawValue)",
                    "http.route": "\(context.endpointPath ?? "unmatched")",
                    "error.code": "\(problem.code.rawValue)",
                    "http.status": "\(problem.status)",
                ]))
            return Self.response(for: problem)
        }
    }

    static func response(for problem: Problem) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let body = (try? encoder.encode(problem)) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = Problem.mediaType
        headers[.contentLength] = "\(body.count)"
        return Response(
            status: .init(code: problem.status),
            headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    static func problem(for error: any Error) -> Problem {
        switch error {
        case let refusal as Refusal:
            return Problem(refusal)
        case let refused as RefusedAfterAssertion:
            return problem(for: refused.error)
        case let problem as Problem:
            return problem
        case let error as StoreError:
            return problem(for: error)
        case let error as DecodingError:
            return Problem(.malformedJSON, detail: "the JSON body does not have the expected shape (\(Self.describe(error)))")
        case is NIOTooManyBytesError:
            return Problem(.payloadTooLarge, detail: "the JSON body is larger than the 64 KiB accepted")
        case let error as any HTTPResponseError:
            switch error.status.code {
            case 404: return Problem(.routeNotFound, detail: "no such resource; see docs/openapi.yaml")
            case 405: return Problem(.methodNotAllowed, detail: "this resource does not accept that method")
            case 413: return Problem(.payloadTooLarge, detail: "the request body is too large")
            case 400..<500: return Problem(.malformedRequest, detail: "the request is malformed")
            default: return Problem(.internalError, detail: "the server failed; the operator's log has the detail")
            }
        default:
            return Problem(.internalError, detail: "the server failed; the operator's log has the detail")
        }
    }

    static func problem(for error: StoreError) -> Problem {
        switch error.code {
        case .dossierNotFound: Problem(.dossierNotFound, detail: "this patient has no dossier; create it with `coffre dossier create`")
        case .dossierExists: Problem(.dossierExists, detail: "this patient already has a dossier")
        case .documentNotFound: Problem(.documentNotFound, detail: "no such document in this dossier")
        case .conflict: Problem(.documentConflict, detail: error.message)
        case .illegalTransition: Problem(.illegalTransition, detail: error.message)
        case .integrity:
            Problem(
                .integrityError,
                detail: "stored data failed its integrity check and was not served; the operator has been told")
        case .tooLarge: Problem(.payloadTooLarge, detail: error.message)
        case .incompleteUpload: Problem(.uploadIncomplete, detail: error.message + "; nothing was stored")
        case .noSpace: Problem(.insufficientStorage, detail: "the vault's disk is full; nothing was stored")
        case .io, .keys: Problem(.storageFailure, detail: "the vault could not complete the operation; nothing was changed")
        case .busy: Problem(.unavailable, detail: "the vault is busy; retry shortly")
        case .keyInUse: Problem(.keyInUse, detail: error.message)
        case .unknownKeyVersion: Problem(.keyVersionNotFound, detail: error.message)
        case .noNewerKey: Problem(.noNewerKey, detail: error.message)
        case .traceUnavailable: Problem(.traceUnavailable, detail: "the access could not be traced, so it was refused; retry shortly")
        case .assertionReplayed:
            Problem(.assertionReplayed, detail: "this assertion was already used; assertions are single-use (mint one per request)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context), .keyNotFound(_, let context), .typeMismatch(_, let context), .valueNotFound(_, let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? "invalid JSON" : "at \(path)"
        @unknown default:
            return "invalid JSON"
        }
    }
}
