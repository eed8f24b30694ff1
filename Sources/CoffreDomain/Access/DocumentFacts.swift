/// What the access rules need to know about one document version.
public struct DocumentFacts: Sendable, Equatable {
    public var documentClass: DocumentClass
    public var typeCode: String?
    public var authorRole: Role
    /// INS or RPPS of the author.
    public var authorID: String
    public var status: DocumentStatus
    /// Masked by the patient: hidden from professionals other than the author and those with
    /// full rights.
    public var masked: Bool
    /// Hidden from the patient pending an announcement consultation.
    public var hiddenFromPatient: Bool
    /// Hidden from legal representatives (care a minor asked to keep confidential).
    public var hiddenFromRepresentatives: Bool
    /// When the author or médecin traitant released a hidden document early (ms since epoch).
    public var releasedAt: Int64?
    /// Upload time (ms since epoch) of the document's first hidden version, or of this version:
    /// the hidden-document delays run from it.
    public var uploadedAt: Int64

    public init(
        documentClass: DocumentClass, typeCode: String? = nil, authorRole: Role, authorID: String,
        status: DocumentStatus = .current, masked: Bool = false, hiddenFromPatient: Bool = false,
        hiddenFromRepresentatives: Bool = false, releasedAt: Int64? = nil, uploadedAt: Int64
    ) {
        self.documentClass = documentClass
        self.typeCode = typeCode
        self.authorRole = authorRole
        self.authorID = authorID
        self.status = status
        self.masked = masked
        self.hiddenFromPatient = hiddenFromPatient
        self.hiddenFromRepresentatives = hiddenFromRepresentatives
        self.releasedAt = releasedAt
        self.uploadedAt = uploadedAt
    }
}

/// The time rules of hidden documents, from the DMP: the patient is told after two weeks that
/// something waits for them, and the document shows itself after a month.
public struct DisclosureDelays: Sendable, Equatable {
    /// After this long a hidden document becomes visible to the patient by itself.
    public var automaticRelease: Int64
    /// After this long a still-hidden document triggers a notice to the patient.
    public var waitingNotice: Int64

    public static let day: Int64 = 86_400_000
    /// One month (30 days) and two weeks.
    public static let dmp = DisclosureDelays(automaticRelease: 30 * day, waitingNotice: 14 * day)

    public init(automaticRelease: Int64, waitingNotice: Int64) {
        self.automaticRelease = automaticRelease
        self.waitingNotice = waitingNotice
    }
}

extension DocumentFacts {
    /// Whether the document is still hidden from the patient at `now`.
    public func isHiddenFromPatient(at now: Int64, delays: DisclosureDelays = .dmp) -> Bool {
        hiddenFromPatient && releasedAt == nil && now < uploadedAt + delays.automaticRelease
    }
}
