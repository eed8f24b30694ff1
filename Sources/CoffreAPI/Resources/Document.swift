public import CoffreDomain

/// A document version's metadata as the API shows it.
public struct DocumentView: Codable, Sendable, Equatable {
    public var id: DocumentID
    public var dossierId: DossierID
    /// Patient-facing category (`BIOLOGIE`, …).
    public var documentClass: DocumentClass
    /// The DMP classCode (JDV_J57) for the category.
    public var classCode: String
    /// LOINC or TRE_A05 type code, when given.
    public var typeCode: String?
    public var title: String?
    /// Date of care, `YYYY-MM-DD`, when given.
    public var careDate: CareDate?
    /// Upload time (RFC 3339, UTC).
    public var uploadedAt: String
    /// Media type of the content.
    public var mediaType: String
    /// Size of the content in bytes.
    public var size: Int64
    /// SHA-256 of the content, lowercase hex.
    public var sha256: String
    public var status: DocumentStatus
    /// The version this one replaced, if any.
    public var replaces: DocumentID?
    public var author: AuthorView
    public var hiddenFromPatient: Bool
    public var hiddenFromRepresentatives: Bool
    /// Masked by the patient (hidden from professionals but the author and those with full rights).
    public var masked: Bool
    /// When a document hidden from the patient was released early (RFC 3339), if it was.
    public var releasedAt: String?

    enum CodingKeys: String, CodingKey {
        case id, dossierId, documentClass = "class", classCode, typeCode, title, careDate, uploadedAt
        case mediaType, size, sha256, status, replaces, author, hiddenFromPatient, hiddenFromRepresentatives
        case masked, releasedAt
    }

    public init(
        id: DocumentID, dossierId: DossierID, documentClass: DocumentClass, typeCode: String?,
        title: String?, careDate: CareDate?, uploadedAt: String, mediaType: String, size: Int64,
        sha256: String, status: DocumentStatus, replaces: DocumentID?, author: AuthorView,
        hiddenFromPatient: Bool, hiddenFromRepresentatives: Bool, masked: Bool, releasedAt: String?
    ) {
        self.id = id
        self.dossierId = dossierId
        self.documentClass = documentClass
        self.classCode = documentClass.dmpClassCode
        self.typeCode = typeCode
        self.title = title
        self.careDate = careDate
        self.uploadedAt = uploadedAt
        self.mediaType = mediaType
        self.size = size
        self.sha256 = sha256
        self.status = status
        self.replaces = replaces
        self.author = author
        self.hiddenFromPatient = hiddenFromPatient
        self.hiddenFromRepresentatives = hiddenFromRepresentatives
        self.masked = masked
        self.releasedAt = releasedAt
    }
}

/// Who wrote a document: `role`, `id` (INS for a patient or representative, RPPS for a
/// professional) and, for a professional, `profession`.
public typealias AuthorView = DocumentAuthor

/// A page of document metadata.
public struct DocumentList: Codable, Sendable, Equatable {
    public var documents: [DocumentView]
    public init(documents: [DocumentView]) { self.documents = documents }
}

/// Body of `POST /v1/patients/{ins}/dossier`; empty today, an object so that fields can come.
public struct CreateDossierRequest: Codable, Sendable {
    public init() {}

    private struct NoKeys: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Demands a JSON object (the synthesised decoder of an empty struct accepts any value).
    public init(from decoder: any Decoder) throws {
        _ = try decoder.container(keyedBy: NoKeys.self)
    }
}

/// The daemon's health, for operators and readiness checks.
public struct HealthView: Codable, Sendable {
    public var status: String
    public var version: String
    public var developmentMode: Bool
    public init(status: String, version: String, developmentMode: Bool) {
        self.status = status
        self.version = version
        self.developmentMode = developmentMode
    }
}

/// What an operator sees of the daemon: key versions and arena usage, never personal data.
public struct AdminStatusView: Codable, Sendable {
    public var activeMasterKeyVersion: UInt32
    public var installedMasterKeyVersions: [UInt32]
    public var keyArenaSlotsFree: Int
    public var keyArenaSlots: Int

    public init(activeMasterKeyVersion: UInt32, installedMasterKeyVersions: [UInt32], keyArenaSlotsFree: Int, keyArenaSlots: Int) {
        self.activeMasterKeyVersion = activeMasterKeyVersion
        self.installedMasterKeyVersions = installedMasterKeyVersions
        self.keyArenaSlotsFree = keyArenaSlotsFree
        self.keyArenaSlots = keyArenaSlots
    }
}
