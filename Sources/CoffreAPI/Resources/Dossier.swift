public import CoffreDomain

/// A dossier as the API shows it.
public struct DossierView: Codable, Sendable, Equatable {
    /// The dossier's random identifier.
    public var id: DossierID
    /// The patient's INS. Only ever sent to a caller allowed to read the dossier.
    public var ins: String
    /// Lifecycle state (`active` at this stage).
    public var state: String
    /// When the dossier was created (RFC 3339, UTC).
    public var createdAt: String
    /// Number of current documents the caller may see.
    public var documentCount: Int
    /// When the dossier was closed (RFC 3339), if it is.
    public var closedAt: String?
    /// `patient_request` or `death`, if closed.
    public var closureReason: String?
    /// The patient asked for deletion on closure (purged after three months, not ten years).
    public var deletionRequested: Bool
    /// When the retention job will purge it (RFC 3339), if closed.
    public var purgeDate: String?
    /// A legal hold blocks the purge.
    public var legalHold: Bool

    public init(
        id: DossierID, ins: String, state: String, createdAt: String, documentCount: Int, closedAt: String? = nil,
        closureReason: String? = nil, deletionRequested: Bool = false, purgeDate: String? = nil, legalHold: Bool = false
    ) {
        self.id = id
        self.ins = ins
        self.state = state
        self.createdAt = createdAt
        self.documentCount = documentCount
        self.closedAt = closedAt
        self.closureReason = closureReason
        self.deletionRequested = deletionRequested
        self.purgeDate = purgeDate
        self.legalHold = legalHold
    }
}

/// Body of `POST /v1/patients/{ins}/dossier/close`.
public struct CloseDossierRequest: Codable, Sendable {
    /// Ask for deletion: purged after three months instead of ten years.
    public var delete: Bool?
    /// Closure on the patient's death (the médecin traitant records it).
    public var death: Bool?
    public init(delete: Bool? = nil, death: Bool? = nil) {
        self.delete = delete
        self.death = death
    }
}

/// Body of `POST /v1/admin/patients/{ins}/hold`.
public struct HoldRequest: Codable, Sendable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// Body of `POST /v1/retention/run`: one batch.
public struct RetentionRunRequest: Codable, Sendable {
    /// Start after this dossier id ("" for the first batch).
    public var after: String?
    public var limit: Int?
    /// List what would go, change nothing.
    public var dryRun: Bool?
    public init(after: String? = nil, limit: Int? = nil, dryRun: Bool? = nil) {
        self.after = after
        self.limit = limit
        self.dryRun = dryRun
    }
}

/// The answer to one retention batch.
public struct RetentionBatchView: Codable, Sendable, Equatable {
    public var checked: Int
    public var purged: Int
    public var held: Int
    public var failed: Int
    public var cursor: String
    public var done: Bool
    public var dryRun: Bool
    public var items: [Item]

    /// One dossier looked at.
    public struct Item: Codable, Sendable, Equatable {
        public var dossierId: String
        /// `purge` (or would purge, in a dry run), `held`, `failed`.
        public var verdict: String
        public var reason: String
        public var purgeDate: String?
        public init(dossierId: String, verdict: String, reason: String, purgeDate: String?) {
            self.dossierId = dossierId
            self.verdict = verdict
            self.reason = reason
            self.purgeDate = purgeDate
        }
    }

    public init(checked: Int, purged: Int, held: Int, failed: Int, cursor: String, done: Bool, dryRun: Bool, items: [Item]) {
        self.checked = checked
        self.purged = purged
        self.held = held
        self.failed = failed
        self.cursor = cursor
        self.done = done
        self.dryRun = dryRun
        self.items = items
    }
}

/// How many dossiers the retention job has to look at now.
public struct RetentionDueView: Codable, Sendable, Equatable {
    public var due: Int
    public init(due: Int) { self.due = due }
}

/// The answer to an opposition: the dossier is gone.
public struct DossierPurgedView: Codable, Sendable, Equatable {
    public var id: DossierID
    /// Always `purged`.
    public var state: String
    public init(id: DossierID, state: String) {
        self.id = id
        self.state = state
    }
}
