public import CoffreDomain
import CoffreCrypto

/// A dossier as the vault returns it, with its sealed fields opened.
public struct DossierRecord: Sendable, Equatable {
    public var id: DossierID
    public var ins: INS
    public var state: String
    /// Milliseconds since the epoch.
    public var createdAt: Int64
    public var masterKeyVersion: UInt32
    /// The dossier key's generation: 1, then one more at every rekey.
    public var keyGeneration: UInt32
    /// What the patient decided about access.
    public var settings: DossierSettings
    /// Active or closed, when, why, and any legal hold.
    public var lifecycle: DossierLifecycle
    /// The unwrapped dossier key, for writing this dossier's trace and notifications; never
    /// leaves the store module.
    var key: SymmetricKey?

    /// What the access rules need to know about the dossier.
    public var facts: DossierFacts { DossierFacts(owner: ins, settings: settings, lifecycle: lifecycle) }
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
    /// Masked by the patient.
    public var masked: Bool
    /// When a hidden document was released early (ms since epoch).
    public var releasedAt: Int64?
    /// When the first hidden version was uploaded (the hidden-document delays run from there).
    public var hiddenSince: Int64?

    /// What the access rules need to know about this version.
    public var facts: DocumentFacts {
        DocumentFacts(
            documentClass: documentClass, typeCode: typeCode, authorRole: author.role, authorID: author.id, status: status,
            masked: masked, hiddenFromPatient: hiddenFromPatient, hiddenFromRepresentatives: hiddenFromRepresentatives,
            releasedAt: releasedAt, uploadedAt: hiddenSince ?? uploadedAt)
    }

    /// Its metadata as stored (what a new version takes over unless it says otherwise).
    public var metadata: NewDocument {
        var metadata = NewDocument(
            documentClass: documentClass, title: title, typeCode: typeCode, careDate: careDate, mediaType: mediaType, author: author,
            hiddenFromPatient: hiddenFromPatient, hiddenFromRepresentatives: hiddenFromRepresentatives)
        metadata.masked = masked
        metadata.hiddenSince = hiddenSince
        return metadata
    }
}

/// The fields of a document row kept encrypted under the dossier key.
struct SealedDocumentFields: Codable {
    var title: String?
    var typeCode: String?
    var careDate: CareDate?
    var author: DocumentAuthor
    var sha256: String
    var masked: Bool
    var hiddenFromPatient: Bool
    var hiddenFromRepresentatives: Bool
    var releasedAt: Int64?
    /// When the document's first hidden version was uploaded: the delays run from there, so
    /// replacing a hidden document does not restart them.
    var hiddenSince: Int64?
}

/// The fields of a dossier row kept encrypted under the dossier key: the patient's INS and what
/// they decided about access (which says who treats them).
struct SealedDossierFields: Codable {
    var ins: String
    var settings: DossierSettings
    var lifecycle: DossierLifecycle
}
