/// The dossier's trace, oldest first.
public struct TraceList: Codable, Sendable {
    /// The most entries one answer carries; a full page means there may be more after it.
    public static let pageLimit = 10_000

    public var entries: [TraceEntryView]
    public init(entries: [TraceEntryView]) { self.entries = entries }
}

/// One traced action on the dossier.
public struct TraceEntryView: Codable, Sendable, Equatable {
    /// Position in the vault-wide chain.
    public var seq: Int64
    /// When (RFC 3339).
    public var at: String
    /// What was attempted, e.g. `document.content`.
    public var action: String
    /// `allowed`, `denied`, `refused` or `failed`.
    public var outcome: String
    public var actor: TraceActorView?
    /// `normal`, `bris_de_glace` or `centre_15`.
    public var mode: String?
    /// The written reason of an emergency access.
    public var reason: String?
    public var documentId: String?
    /// The version a `document.replace` replaced (`documentId` is the new one).
    public var replacesDocumentId: String?
    /// The rule that decided.
    public var rule: String?
    /// The habilitation matrix version, when it decided.
    public var matrixVersion: String?
    public var errorCode: String?

    public init(
        seq: Int64, at: String, action: String, outcome: String, actor: TraceActorView?, mode: String?, reason: String?,
        documentId: String?, replacesDocumentId: String? = nil, rule: String?, matrixVersion: String?, errorCode: String?
    ) {
        self.seq = seq
        self.at = at
        self.action = action
        self.outcome = outcome
        self.actor = actor
        self.mode = mode
        self.reason = reason
        self.documentId = documentId
        self.replacesDocumentId = replacesDocumentId
        self.rule = rule
        self.matrixVersion = matrixVersion
        self.errorCode = errorCode
    }
}

/// Who acted.
public struct TraceActorView: Codable, Sendable, Equatable {
    public var role: String?
    /// INS or RPPS.
    public var id: String?
    public var profession: String?
    public var specialty: String?
    public var organization: String?

    public init(role: String?, id: String?, profession: String?, specialty: String?, organization: String?) {
        self.role = role
        self.id = id
        self.profession = profession
        self.specialty = specialty
        self.organization = organization
    }
}

/// The result of `POST /v1/admin/verify`.
public struct VerifyReport: Codable, Sendable, Equatable {
    /// True when no problem was found.
    public var ok: Bool
    public var dossiersChecked: Int
    /// Documents whose blob was read to the end and compared with its recorded hash.
    public var documentsChecked: Int
    /// Blobs no index row names.
    public var orphanBlobs: Int
    public var traceEntriesChecked: Int64
    public var traceCheckpointsChecked: Int
    /// Lines of the trace's anchor file (outside the index) checked against the index.
    public var traceAnchorsChecked: Int
    /// The first trace entry that is missing or does not follow from the one before.
    public var firstBrokenTraceEntry: Int64?
    public var problems: [String]
    /// The Ed25519 public key (hex) trace checkpoints are signed with.
    public var traceSigningKey: String

    public init(
        ok: Bool, dossiersChecked: Int, documentsChecked: Int, orphanBlobs: Int, traceEntriesChecked: Int64,
        traceCheckpointsChecked: Int, traceAnchorsChecked: Int, firstBrokenTraceEntry: Int64?, problems: [String],
        traceSigningKey: String
    ) {
        self.traceAnchorsChecked = traceAnchorsChecked
        self.ok = ok
        self.dossiersChecked = dossiersChecked
        self.documentsChecked = documentsChecked
        self.orphanBlobs = orphanBlobs
        self.traceEntriesChecked = traceEntriesChecked
        self.traceCheckpointsChecked = traceCheckpointsChecked
        self.firstBrokenTraceEntry = firstBrokenTraceEntry
        self.problems = problems
        self.traceSigningKey = traceSigningKey
    }
}

/// A progress line of `POST /v1/admin/verify` asked with `Accept: application/x-ndjson`: the
/// answer is one such line every quarter second or so, then the `VerifyReport` (or, if the
/// check could not finish, a problem document).
public struct VerifyProgress: Codable, Sendable, Equatable {
    /// Documents whose blob has been read so far.
    public var checked: Int
    /// Documents to read in all.
    public var total: Int

    public init(checked: Int, total: Int) {
        self.checked = checked
        self.total = total
    }
}

/// The time the dossier's rules run on.
public struct ClockView: Codable, Sendable, Equatable {
    /// RFC 3339.
    public var now: String
    /// True when the clock is the settable development clock.
    public var settable: Bool
    public init(now: String, settable: Bool) {
        self.now = now
        self.settable = settable
    }
}

/// Body of `POST /v1/admin/clock` (development mode only).
public struct SetClockRequest: Codable, Sendable {
    /// `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
    public var now: String
    public init(now: String) { self.now = now }
}
