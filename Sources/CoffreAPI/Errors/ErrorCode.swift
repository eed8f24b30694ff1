/// Stable error codes: the `code` member of every `application/problem+json` answer.
///
/// Clients and scripts switch on these, so a code is never renamed or reused; new failures get
/// new codes. Each code has one HTTP status.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    // Request shape
    case malformedRequest = "malformed_request"
    case malformedJSON = "malformed_json"
    case invalidINS = "invalid_ins"
    case invalidIdentifier = "invalid_identifier"
    case unknownClass = "unknown_class"
    case invalidMetadata = "invalid_metadata"
    case payloadTooLarge = "payload_too_large"
    case uploadIncomplete = "upload_incomplete"
    case routeNotFound = "route_not_found"
    case methodNotAllowed = "method_not_allowed"
    case headersTooLarge = "headers_too_large"
    // Who is calling
    case assertionMissing = "assertion_missing"
    case assertionMalformed = "assertion_malformed"
    case assertionBadSignature = "assertion_bad_signature"
    case assertionExpired = "assertion_expired"
    case assertionUnknownIssuer = "assertion_unknown_issuer"
    case assertionReplayed = "assertion_replayed"
    /// The issuer is trusted, but not for this role, mode or profession (its scope file).
    case assertionOutOfScope = "assertion_out_of_scope"
    case notOperator = "not_operator"
    case developmentOnly = "development_only"
    case accessDenied = "access_denied"
    // State
    case dossierNotFound = "dossier_not_found"
    case dossierExists = "dossier_exists"
    case documentNotFound = "document_not_found"
    case documentConflict = "document_conflict"
    case illegalTransition = "illegal_transition"
    case keyInUse = "key_in_use"
    case keyVersionNotFound = "key_version_not_found"
    case noNewerKey = "no_newer_key"
    // Server side
    case integrityError = "integrity_error"
    case storageFailure = "storage_failure"
    case insufficientStorage = "insufficient_storage"
    case unavailable = "unavailable"
    /// Too many transfers in flight, for the vault or for this caller: retry shortly.
    case busy = "busy"
    case traceUnavailable = "trace_unavailable"
    case internalError = "internal_error"

    /// The HTTP status that carries this code.
    public var httpStatus: Int {
        switch self {
        case .malformedRequest, .malformedJSON, .invalidINS, .invalidIdentifier, .unknownClass,
            .invalidMetadata, .uploadIncomplete:
            400
        case .assertionMissing, .assertionMalformed, .assertionBadSignature, .assertionExpired,
            .assertionUnknownIssuer, .assertionReplayed, .assertionOutOfScope:
            401
        case .notOperator, .accessDenied, .developmentOnly: 403
        case .routeNotFound, .dossierNotFound, .documentNotFound, .keyVersionNotFound: 404
        case .methodNotAllowed: 405
        case .dossierExists, .documentConflict, .illegalTransition, .keyInUse, .noNewerKey: 409
        case .payloadTooLarge: 413
        case .headersTooLarge: 431
        case .integrityError, .storageFailure, .internalError: 500
        case .unavailable, .traceUnavailable, .busy: 503
        case .insufficientStorage: 507
        }
    }
}
