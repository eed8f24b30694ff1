public import CoffreDomain

/// A dossier as the vault returns it, with its sealed fields opened.
public struct DossierRecord: Sendable, Equatable {
    public var id: DossierID
    public var ins: INS
    public var state: String
    /// Milliseconds since the epoch.
    public var createdAt: Int64
    public var masterKeyVersion: UInt32
}

/// Metadata of a new document, as the caller supplies it.
public struct NewDocument: Sendable {
    public var documentClass: DocumentClass
    public var title: String?
    public var typeCode: String?
    public var careDate: CareDate?
    public var mediaType: String
    public var author: DocumentAuthor
    public var hiddenFromPatient: Bool
    public var hiddenFromRepresentatives: Bool

    public init(
        documentClass: DocumentClass, title: String? = nil, typeCode: String? = nil, careDate: CareDate? = nil,
        mediaType: String = "application/octet-stream", author: DocumentAuthor,
        hiddenFromPatient: Bool = false, hiddenFromRepresentatives: Bool = false
    ) {
        self.documentClass = documentClass
        self.title = title
        self.typeCode = typeCode
        self.careDate = careDate
        self.mediaType = mediaType
        self.author = author
        self.hiddenFromPatient = hiddenFromPatient
        self.hiddenFromRepresentatives = hiddenFromRepresentatives
    }
}

/// Who wrote a document: role, identifier (INS or RPPS) and profession.
public struct DocumentAuthor: Sendable, Equatable, Codable {
    public var role: Role
    public var id: String
    public var profession: String?

    public init(role: Role, id: String, profession: String?) {
        self.role = role
        self.id = id
        self.profession = profession
    }
}

/// A stored document version, with its sealed fields opened.
public struct DocumentRecord: Sendable, Equatable {
    public var id: DocumentID
    public var dossierID: DossierID
    public var documentClass: DocumentClass
    public var title: String?
    public var typeCode: String?
    public var careDate: CareDate?
    public var mediaType: String
    public var author: DocumentAuthor
    public var size: Int64
    /// SHA-256 of the plaintext.
    public var sha256: [UInt8]
    public var status: DocumentStatus
    public var replaces: DocumentID?
    /// Milliseconds since the epoch.
    public var uploadedAt: Int64
    public var hiddenFromPatient: Bool
    public var hiddenFromRepresentatives: Bool
}

/// The fields of a document row kept encrypted under the dossier key.
struct SealedDocumentFields: Codable {
    var title: String?
    var typeCode: String?
    var careDate: CareDate?
    var author: DocumentAuthor
    var sha256: String
}

/// The fields of a dossier row kept encrypted under the dossier key.
struct SealedDossierFields: Codable {
    var ins: String
}
