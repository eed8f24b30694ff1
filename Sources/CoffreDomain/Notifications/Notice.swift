/// Who a notification is for.
public enum NotificationRecipient: String, Sendable, Codable {
    case patient
    case medecinTraitant = "medecin_traitant"
}

/// The kinds of notice Coffre sends, as stable codes.
public enum NotificationKind: String, Sendable, Codable {
    /// A professional accessed the dossier for the first time (or at all, if the patient asked).
    case professionalAccess = "professional_access"
    /// A professional added a document.
    case documentAdded = "document_added"
    /// A professional replaced a document with a new version.
    case documentReplaced = "document_replaced"
    /// Emergency access (bris de glace or centre 15), to the patient and the médecin traitant.
    case emergencyAccess = "emergency_access"
    /// A document hidden from the patient has waited two weeks; the notice reveals nothing of it.
    case hiddenDocumentWaiting = "hidden_document_waiting"
    /// A document hidden from the patient pending an announcement was released to them.
    case documentReleased = "document_released"
    /// A professional deleted a document.
    case documentDeleted = "document_deleted"
}

/// A notice an operation owes, written in the transaction that commits the operation.
public struct Notice: Sendable, Equatable {
    /// Which document a notice names.
    public enum Subject: Sendable, Equatable {
        /// None.
        case none
        /// The document the operation stores, whose id is known only once it is stored.
        case newDocument
        /// A document already stored.
        case document(DocumentID)
    }

    /// How the notice is identified.
    public enum Identity: Sendable, Equatable {
        /// A fresh random id: every occurrence is a notice.
        case fresh
        /// An id derived from these words (which must name the dossier or a document, whose ids
        /// are unique): the notice is stored once however often it is planned (a first access
        /// by the same professional, a document waiting).
        case derived(String)
    }

    public var recipient: NotificationRecipient
    public var kind: NotificationKind
    /// What the recipient reads, in French.
    public var message: String
    /// Who acted, or nil to leave it unsaid.
    public var actor: TraceDetail?
    public var subject: Subject
    public var identity: Identity
    /// About care hidden from the representatives (a minor's confidential care, L1111-5): the
    /// patient reads it, the representatives, who read the patient's outbox, never do.
    public var hiddenFromRepresentatives: Bool

    public init(
        recipient: NotificationRecipient, kind: NotificationKind, message: String, actor: TraceDetail? = nil,
        subject: Subject = .none, identity: Identity = .fresh, hiddenFromRepresentatives: Bool = false
    ) {
        self.recipient = recipient
        self.kind = kind
        self.message = message
        self.actor = actor
        self.subject = subject
        self.identity = identity
        self.hiddenFromRepresentatives = hiddenFromRepresentatives
    }
}
