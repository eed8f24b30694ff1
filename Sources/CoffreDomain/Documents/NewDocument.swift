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

    /// The author a person is when they store a document.
    public init(_ actor: Actor) {
        switch actor.subject {
        case .patient(let ins): self.init(role: .patient, id: ins.value, profession: nil)
        case .representative(let ins, _): self.init(role: .representative, id: ins.value, profession: nil)
        case .professional(let rpps, let profession, _, _): self.init(role: .professional, id: rpps.value, profession: profession.code)
        }
    }
}

/// Metadata of a new document (or a new version), as it will be stored.
public struct NewDocument: Sendable, Equatable {
    public var documentClass: DocumentClass
    public var title: String?
    public var typeCode: String?
    public var careDate: CareDate?
    public var mediaType: String
    public var author: DocumentAuthor
    public var hiddenFromPatient: Bool
    public var hiddenFromRepresentatives: Bool
    /// Masked from the start (the patient's "mask new documents" preference).
    public var masked: Bool = false
    /// For a new version of a hidden document: when the first hidden version was uploaded.
    public var hiddenSince: Int64? = nil

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

/// The metadata a client sends with a document, before the rules complete it: fields it did
/// not send are nil (a new version takes them from the version it replaces).
public struct DocumentUpload: Sendable, Equatable {
    public var documentClass: DocumentClass?
    public var title: String?
    public var typeCode: String?
    public var careDate: CareDate?
    public var mediaType: String?
    /// Who the document is hidden from, when the client said (`nil`: not said).
    public var hiddenFrom: (patient: Bool, representatives: Bool)?

    public init(
        documentClass: DocumentClass? = nil, title: String? = nil, typeCode: String? = nil, careDate: CareDate? = nil,
        mediaType: String? = nil, hiddenFrom: (patient: Bool, representatives: Bool)? = nil
    ) {
        self.documentClass = documentClass
        self.title = title
        self.typeCode = typeCode
        self.careDate = careDate
        self.mediaType = mediaType
        self.hiddenFrom = hiddenFrom
    }

    public static func == (a: DocumentUpload, b: DocumentUpload) -> Bool {
        a.documentClass == b.documentClass && a.title == b.title && a.typeCode == b.typeCode && a.careDate == b.careDate
            && a.mediaType == b.mediaType && a.hiddenFrom?.patient == b.hiddenFrom?.patient
            && a.hiddenFrom?.representatives == b.hiddenFrom?.representatives
    }
}
