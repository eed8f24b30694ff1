public import CoffreAPI

/// A failure the client reports: a stable code (the server's, or one of the client's own), a
/// message with a hint, and the exit code scripts can rely on.
public struct ClientError: Error, Sendable, CustomStringConvertible {
    /// The server's problem document, when the server refused the request.
    public var problem: Problem?
    /// A short stable code (`ErrorCode` raw value, or a client-side code such as `socket_unreachable`).
    public var code: String
    public var message: String
    public var exitCode: Int32

    public init(problem: Problem) {
        self.problem = problem
        self.code = problem.code.rawValue
        self.message = problem.detail
        self.exitCode = ExitStatus.forServer(problem.code)
    }

    public init(code: String, message: String, exitCode: Int32) {
        self.problem = nil
        self.code = code
        self.message = message
        self.exitCode = exitCode
    }

    public var description: String { "\(code): \(message)" }
}

/// Exit codes of `coffre`, after sysexits(3), so scripts can branch on the kind of failure.
public enum ExitStatus {
    public static let success: Int32 = 0
    /// Bad command line.
    public static let usage: Int32 = 64
    /// The request was refused as invalid (bad INS, unknown class, too large, …).
    public static let invalidRequest: Int32 = 65
    /// Dossier, document or input file not found.
    public static let notFound: Int32 = 66
    /// The daemon cannot be reached.
    public static let unavailable: Int32 = 69
    /// The daemon failed internally.
    public static let serverFailure: Int32 = 70
    /// An output file cannot be created.
    public static let cannotCreate: Int32 = 73
    /// Storage failed (disk full, I/O error), locally or in the daemon.
    public static let ioFailure: Int32 = 74
    /// Busy; retry later.
    public static let temporaryFailure: Int32 = 75
    /// Integrity failure: stored data damaged, or content that does not match its hash.
    public static let integrity: Int32 = 76
    /// Not allowed: missing, invalid or expired assertion, access denied, not an operator.
    public static let notPermitted: Int32 = 77

    static func forServer(_ code: ErrorCode) -> Int32 {
        switch code {
        case .malformedRequest, .malformedJSON, .invalidINS, .invalidIdentifier, .unknownClass, .invalidMetadata,
            .payloadTooLarge, .headersTooLarge, .uploadIncomplete, .dossierExists, .documentConflict, .illegalTransition, .methodNotAllowed,
            .routeNotFound,
            .keyInUse, .noNewerKey:
            invalidRequest
        case .assertionMissing, .assertionMalformed, .assertionBadSignature, .assertionExpired,
            .assertionUnknownIssuer, .assertionReplayed, .assertionOutOfScope, .notOperator, .accessDenied, .developmentOnly:
            notPermitted
        case .dossierNotFound, .documentNotFound, .keyVersionNotFound: notFound
        case .integrityError: integrity
        case .storageFailure, .insufficientStorage: ioFailure
        case .unavailable, .traceUnavailable, .busy: temporaryFailure
        case .internalError: serverFailure
        }
    }
}
