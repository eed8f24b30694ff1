/// Something a caller asks of one dossier. Every person-level and operator operation on a
/// dossier is one of these, and each goes through the same pipeline: load the facts, plan
/// (decide, then draw up the change, its trace entry and its notices), commit.
public enum DossierOperation: Sendable, Equatable {
    case createDossier
    case readDossier
    /// The patient reads who may see their dossier.
    case readAccess
    /// Names the médecin traitant, with the profession the patient gives for them (a doctor's,
    /// 10, is the only one accepted; nil when none was given).
    case setAttendingDoctor(RPPS, profession: Profession?)
    case setPreferences(PreferencesChange)
    case setEmergency(EmergencyChange)
    /// Adds `member` to a list the patient manages, or removes it.
    case changeAccessList(AccessList, member: AccessMember, add: Bool)
    /// Closed by the patient (or their representative), or on death by the médecin traitant.
    case close(death: Bool, deletionRequested: Bool)
    case reopen
    case oppose
    /// An operator's legal hold, with its reason.
    case hold(reason: String)
    case releaseHold
    /// A death the site's records office learnt of (an operator's).
    case recordDeath
    case listDocuments
    case readDocument(DocumentID)
    case readContent(DocumentID)
    case addDocument(DocumentUpload)
    case replaceDocument(DocumentID, DocumentUpload)
    case maskDocument(DocumentID, masked: Bool)
    case releaseDocument(DocumentID)
    case deleteDocument(DocumentID)
    case readTrace
    case readNotifications
    /// Acknowledges the caller's pending notices (every one when `ids` is nil).
    case acknowledgeNotifications(ids: [String]?)

    /// What the trace calls this operation.
    public var action: DossierAction {
        switch self {
        case .createDossier: .createDossier
        case .readDossier: .readDossier
        case .readAccess: .readAccessSettings
        case .setAttendingDoctor, .setPreferences, .setEmergency, .changeAccessList: .manageDossier
        case .close(let death, _): death ? .closeDossierOnDeath : .closeDossier
        case .reopen: .reopenDossier
        case .oppose: .opposeDossier
        case .hold: .holdDossier
        case .releaseHold: .releaseHold
        case .recordDeath: .closeDossierOnDeath
        case .listDocuments: .listDocuments
        case .readDocument: .readDocumentMetadata
        case .readContent: .readDocumentContent
        case .addDocument: .addDocument
        case .replaceDocument: .replaceDocument
        case .maskDocument: .maskDocument
        case .releaseDocument: .releaseDocument
        case .deleteDocument: .deleteDocument
        case .readTrace: .readTrace
        case .readNotifications, .acknowledgeNotifications: .readNotifications
        }
    }

    /// The document the operation names, if it names one.
    public var documentID: DocumentID? {
        switch self {
        case .readDocument(let id), .readContent(let id), .replaceDocument(let id, _), .maskDocument(let id, _),
            .releaseDocument(let id), .deleteDocument(let id):
            id
        default: nil
        }
    }

    /// Operations only an operator may ask for.
    public var isOperators: Bool {
        switch self {
        case .hold, .releaseHold, .recordDeath: true
        default: false
        }
    }

    /// Whether planning needs the facts of every document of the dossier (to find hidden
    /// documents owed a notice).
    public var needsDocumentList: Bool {
        switch self {
        // Waiting notices come from the documents; a representative's acknowledgement skips
        // what their authors did (confidential care).
        case .readNotifications, .acknowledgeNotifications: true
        default: false
        }
    }
}

/// The lists of professionals a patient manages.
public enum AccessList: String, CaseIterable, Sendable {
    case authorized
    case administrators
    case blocked
}

/// Who goes on an access list: a professional, or (blocks only) a whole establishment.
public enum AccessMember: Sendable, Equatable {
    case professional(RPPS)
    case organization(FINESS)

    /// The identifier as settings keep it.
    public var value: String {
        switch self {
        case .professional(let rpps): rpps.value
        case .organization(let finess): finess.value
        }
    }
}

/// The patient's notification and masking preferences; nil leaves one as it is.
public struct PreferencesChange: Codable, Sendable, Equatable {
    public var maskNewDocuments: Bool?
    public var notifyEveryAccess: Bool?
    public var notifyNewDocuments: Bool?

    public init(maskNewDocuments: Bool? = nil, notifyEveryAccess: Bool? = nil, notifyNewDocuments: Bool? = nil) {
        self.maskNewDocuments = maskNewDocuments
        self.notifyEveryAccess = notifyEveryAccess
        self.notifyNewDocuments = notifyNewDocuments
    }
}

/// The patient's emergency switches (true allows); nil leaves one as it is.
public struct EmergencyChange: Codable, Sendable, Equatable {
    public var brisDeGlace: Bool?
    public var centre15: Bool?
    public var masked: Bool?

    public init(brisDeGlace: Bool? = nil, centre15: Bool? = nil, masked: Bool? = nil) {
        self.brisDeGlace = brisDeGlace
        self.centre15 = centre15
        self.masked = masked
    }
}
