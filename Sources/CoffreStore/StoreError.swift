public import CoffreDomain

/// A failure of the storage layer: what failed, in words an operator can act on, and why.
/// Messages never contain personal data (no INS, no title).
public typealias StoreError = SystemFailure<StoreFailure>

/// What kind of failure of the storage layer a `StoreError` is.
public enum StoreFailure: String, Sendable {
    /// No dossier for this patient.
    case dossierNotFound
    /// The patient already has a dossier.
    case dossierExists
    /// No such document in this dossier.
    case documentNotFound
    /// The document is not in a state that allows the change (already replaced or deleted).
    case conflict
    /// The dossier's lifecycle does not allow the change (closing a closed dossier, …).
    case illegalTransition
    /// Stored bytes failed authentication, or a blob is missing or malformed.
    case integrity
    /// The content exceeds the configured size limit.
    case tooLarge
    /// The client's upload ended before the declared length.
    case incompleteUpload
    /// The disk is full (ENOSPC or EDQUOT).
    case noSpace
    /// Any other I/O failure (including a failed fsync, which is never retried).
    case io
    /// Key material is missing, malformed or unusable.
    case keys
    /// The locked-memory arena is exhausted: too many requests in flight.
    case busy
    /// A master key version is active or still wraps keys, so it cannot be retired.
    case keyInUse
    /// The vault has never used this master key version.
    case unknownKeyVersion
    /// Rotation asked for with no newer master key installed.
    case noNewerKey
    /// The trace entry allowing a change could not be written, so the change was not made.
    case traceUnavailable
    /// The request's single-use assertion was used already (seen by the index: by a daemon
    /// sharing it, or by this one before a restart).
    case assertionReplayed
}

extension StoreFailure {
    /// The API's error code for a failure an operation's trace entry records (a store whose
    /// content never became a document): the same words the caller's answer carries.
    public var traceCode: String {
        switch self {
        case .tooLarge: "payload_too_large"
        case .incompleteUpload: "upload_incomplete"
        case .noSpace: "insufficient_storage"
        case .integrity: "integrity_error"
        case .busy: "unavailable"
        case .assertionReplayed: "assertion_replayed"
        default: "storage_failure"
        }
    }
}
