import CoffreCrypto
import CoffreDomain
import Foundation

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
}

/// A notification as its recipient reads it.
public struct NotificationRecord: Sendable, Equatable {
    public var id: String
    public var recipient: NotificationRecipient
    public var kind: NotificationKind
    public var message: String
    public var createdAt: Int64
    public var acknowledgedAt: Int64?
    /// Who acted (role, id, profession, mode, reason), when a person did.
    public var actor: TraceDetail?
    public var documentID: String?
}

/// A notice owed for a document being stored. It is written in the transaction that records
/// the document (and its trace entry): a patient is told of every document a professional adds,
/// a crash cannot come between the two, and a failed notice cannot fail a stored document.
public struct DocumentNotice: Sendable {
    public var recipient: NotificationRecipient
    public var kind: NotificationKind
    public var message: String
    /// Who stored it, or nil to leave it unsaid.
    public var actor: TraceDetail?
    /// Whether the notice names the document (its id, known once it is stored).
    public var namesDocument: Bool

    public init(recipient: NotificationRecipient, kind: NotificationKind, message: String, actor: TraceDetail?, namesDocument: Bool) {
        self.recipient = recipient
        self.kind = kind
        self.message = message
        self.actor = actor
        self.namesDocument = namesDocument
    }
}

/// The sealed part of a notification.
struct SealedNotification: Codable {
    var kind: NotificationKind
    var message: String
    var actor: TraceDetail?
    var documentID: String?
}

extension Vault {
    /// Puts a notification in the outbox. With `id`, the same notice is stored once however
    /// often it is computed.
    public func notify(
        _ dossier: DossierRecord, recipient: NotificationRecipient, kind: NotificationKind, message: String,
        actor: TraceDetail? = nil, documentID: String? = nil, id: String? = nil
    ) async throws(StoreError) {
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        let sealed = SealedNotification(kind: kind, message: message, actor: actor, documentID: documentID)
        try await index.insertNotification(
            try notificationRow(sealed, recipient: recipient, dossierID: dossier.id.value, key: key, id: id ?? SecureRandom.hexIdentifier())
        )
    }

    /// The outbox row for a document's notice, sealed under the dossier key.
    func notificationRow(for notice: DocumentNotice, documentID: String, dossierID: String, key: SymmetricKey) throws(StoreError)
        -> NotificationRow
    {
        let sealed = SealedNotification(
            kind: notice.kind, message: notice.message, actor: notice.actor, documentID: notice.namesDocument ? documentID : nil)
        return try notificationRow(sealed, recipient: notice.recipient, dossierID: dossierID, key: key, id: SecureRandom.hexIdentifier())
    }

    private func notificationRow(
        _ sealed: SealedNotification, recipient: NotificationRecipient, dossierID: String, key: SymmetricKey, id: String
    ) throws(StoreError) -> NotificationRow {
        var row = NotificationRow(
            id: id, dossierId: dossierID, recipient: recipient.rawValue, createdAt: clock.now(), acknowledgedAt: nil, sealed: Data())
        row.sealed = Data(try Self.seal(sealed, key: key, associatedData: row.associatedData))
        return row
    }

    /// The recipient's notifications, oldest first; pending ones only unless asked.
    public func notifications(
        for dossier: DossierRecord, recipient: NotificationRecipient, includeAcknowledged: Bool
    ) async throws(StoreError) -> [NotificationRecord] {
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        let rows = try await index.notifications(
            dossierID: dossier.id.value, recipient: recipient.rawValue, includeAcknowledged: includeAcknowledged)
        var records: [NotificationRecord] = []
        var earlierKeys: [SymmetricKey]? = nil
        for row in rows {
            let sealed: SealedNotification
            do {
                sealed = try Self.open(Array(row.sealed), key: key, associatedData: row.associatedData)
            } catch  where dossier.keyGeneration > 1 {
                // Sealed by a request that raced a rekey, under the key it replaced.
                if earlierKeys == nil { earlierKeys = try await archivedDossierKeys(dossier.id) }
                guard
                    let opened: SealedNotification = earlierKeys?.lazy.compactMap({
                        try? Self.open(Array(row.sealed), key: $0, associatedData: row.associatedData)
                    }).first
                else { throw error }
                sealed = opened
            }
            records.append(
                NotificationRecord(
                    id: row.id, recipient: recipient, kind: sealed.kind, message: sealed.message, createdAt: row.createdAt,
                    acknowledgedAt: row.acknowledgedAt, actor: sealed.actor, documentID: sealed.documentID))
        }
        return records
    }

    /// Acknowledges notifications (all pending ones when `ids` is nil); returns how many.
    public func acknowledgeNotifications(for dossier: DossierRecord, recipient: NotificationRecipient, ids: [String]?)
        async throws(StoreError) -> Int
    {
        try await index.acknowledgeNotifications(dossierID: dossier.id.value, recipient: recipient.rawValue, ids: ids, at: clock.now())
    }
}

extension Vault {
    /// A stable 32-hex identifier derived from a label and a value (for notices that must be
    /// stored once however often they are computed).
    public static func derivedIdentifier(_ label: String, _ value: String) -> String {
        String(Hex.encode(SHA256Hasher.hash(Array((label + "/" + value).utf8))).prefix(32))
    }
}
