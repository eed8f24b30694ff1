/// An action a caller wants to perform on a dossier.
public enum DossierAction: String, Sendable, CaseIterable {
    case createDossier = "dossier.create"
    case readDossier = "dossier.read"
    /// Naming the médecin traitant, authorising and blocking, emergency switches, preferences.
    case manageDossier = "dossier.manage"
    case listDocuments = "document.list"
    case readDocumentMetadata = "document.metadata"
    case readDocumentContent = "document.content"
    case addDocument = "document.add"
    case replaceDocument = "document.replace"
    case deleteDocument = "document.delete"
    /// Masking and unmasking.
    case maskDocument = "document.mask"
    /// Releasing a document hidden from the patient before its automatic release.
    case releaseDocument = "document.release"
    case readTrace = "trace.read"
    case readNotifications = "notifications.read"
    /// Reading who may see the dossier (the patient's own view of their settings).
    case readAccessSettings = "access.read"
    /// Closing by the patient (or their representative).
    case closeDossier = "dossier.close"
    /// Recording the patient's death, which closes the dossier: the médecin traitant's act.
    case closeDossierOnDeath = "dossier.close-on-death"
    case reopenDossier = "dossier.reopen"
    case opposeDossier = "dossier.oppose"
    /// An operator's legal hold.
    case holdDossier = "dossier.hold"
    /// An operator lifts a legal hold.
    case releaseHold = "dossier.release-hold"
    /// An operator gives a dossier a new key.
    case rekeyDossier = "dossier.rekey"
    /// A dossier destroyed for good (retention, a deletion request, an opposition).
    case purgeDossier = "dossier.purge"
    /// An operator loads newly installed master keys.
    case reloadKeys = "keys.reload"
    /// An operator starts a master key rotation.
    case rotateKeys = "keys.rotate"
    /// An operator retires a master key version.
    case retireKey = "keys.retire"
    /// An operator reads the master key versions and the rotation.
    case readKeys = "keys.read"
    /// An operator or the retention job counts the dossiers due for purge.
    case readRetentionDue = "retention.due"
    /// An operator or the retention job runs a retention batch (or a dry run of one).
    case runRetention = "retention.run"
    /// An operator checks the vault's integrity (which opens documents to check their content).
    case verifyVault = "vault.verify"
    /// An operator reads the daemon's status.
    case readStatus = "vault.status"
    /// An operator moves the development daemon's clock.
    case setClock = "vault.clock"

    /// Actions only operators (or the vault itself, for a purge) take.
    public var isOperators: Bool {
        switch self {
        case .holdDossier, .releaseHold, .rekeyDossier, .purgeDossier, .reloadKeys, .rotateKeys, .retireKey, .readKeys,
            .readRetentionDue, .runRetention, .verifyVault, .readStatus, .setClock:
            true
        default: false
        }
    }

    /// Whether the action changes the dossier's content or settings (refused while closed).
    public var writes: Bool {
        switch self {
        // Closing and opposing are the lifecycle's to refuse (with a clearer error).
        case .addDocument, .replaceDocument, .deleteDocument, .maskDocument, .releaseDocument, .manageDossier: true
        default: false
        }
    }

    /// Whether the action only reads (the dossier, its documents, its trace, notifications or
    /// settings). Its trace entry, like a refusal's, may be made durable by batch: losing the
    /// last milliseconds of them to a power cut loses no document, no key and no change.
    public var onlyReads: Bool {
        switch self {
        case .readDossier, .listDocuments, .readDocumentMetadata, .readDocumentContent, .readTrace, .readNotifications,
            .readAccessSettings, .readKeys, .readRetentionDue, .readStatus:
            true
        case .createDossier, .manageDossier, .addDocument, .replaceDocument, .deleteDocument, .maskDocument, .releaseDocument,
            .closeDossier, .closeDossierOnDeath, .reopenDossier, .opposeDossier, .holdDossier, .releaseHold, .rekeyDossier,
            .purgeDossier, .reloadKeys, .rotateKeys, .retireKey, .runRetention, .verifyVault, .setClock:
            false
        }
    }

    /// Whether the action consults the dossier's content (all an emergency access may do).
    public var consultsContent: Bool {
        switch self {
        case .readDossier, .listDocuments, .readDocumentMetadata, .readDocumentContent: true
        default: false
        }
    }

    /// Whether the action is about one document (and needs its facts).
    public var concernsDocument: Bool {
        switch self {
        case .readDocumentMetadata, .readDocumentContent, .replaceDocument, .deleteDocument, .maskDocument, .releaseDocument: true
        default: false
        }
    }
}

/// The outcome of an access decision, with the rule that made it and, when the habilitation
/// matrix was consulted, its version (both recorded in the trace).
public struct AccessDecision: Sendable, Equatable {
    /// Whether the action may proceed.
    public var isAllowed: Bool
    /// A stable name for the rule that decided, e.g. `patient.own-dossier`.
    public var rule: String
    /// The habilitation matrix version, when it decided.
    public var matrixVersion: String?

    public init(isAllowed: Bool, rule: String, matrixVersion: String? = nil) {
        self.isAllowed = isAllowed
        self.rule = rule
        self.matrixVersion = matrixVersion
    }

    public static func allow(_ rule: String) -> AccessDecision { .init(isAllowed: true, rule: rule) }
    public static func deny(_ rule: String) -> AccessDecision { .init(isAllowed: false, rule: rule) }
}

/// What the rules need to know about a dossier.
public struct DossierFacts: Sendable, Equatable {
    /// The patient (titulaire).
    public var owner: INS
    public var settings: DossierSettings
    /// Active or closed, and any legal hold.
    public var lifecycle: DossierLifecycle

    public init(owner: INS, settings: DossierSettings = DossierSettings(), lifecycle: DossierLifecycle) {
        self.owner = owner
        self.settings = settings
        self.lifecycle = lifecycle
    }

    /// Facts with only the state known (the access rules' tests).
    public init(owner: INS, settings: DossierSettings = DossierSettings(), isClosed: Bool = false) {
        var lifecycle = DossierLifecycle(createdAt: 0)
        if isClosed {
            lifecycle.state = .closed
            lifecycle.closedAt = 0
            lifecycle.closureReason = .patientRequest
        }
        self.init(owner: owner, settings: settings, lifecycle: lifecycle)
    }

    /// Closed dossiers are read-only until reopened.
    public var isClosed: Bool { lifecycle.state == .closed }
}
