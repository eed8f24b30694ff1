import CoffreCrypto
public import CoffreDomain
import Foundation

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
    /// About care hidden from the representatives: the patient's alone.
    public var hiddenFromRepresentatives: Bool
}

/// The sealed part of a notification (whether it is hidden from representatives too: the
/// clear columns say nothing of a minor's confidential care).
struct SealedNotification: Codable {
    var kind: NotificationKind
    var message: String
    var actor: TraceDetail?
    var documentID: String?
    /// Nil in notices written before it existed: not hidden.
    var hiddenFromRepresentatives: Bool?
}

extension Vault {
    /// Puts a notification in the outbox. With `id`, the same notice is stored once however
    /// often it is computed.
    func notify(
        _ dossier: DossierRecord, recipient: NotificationRecipient, kind: NotificationKind, message: String,
        actor: TraceDetail? = nil, documentID: String? = nil, id: String? = nil
    ) async throws(StoreError) {
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        let sealed = SealedNotification(kind: kind, message: message, actor: actor, documentID: documentID)
        let row = try notificationRow(
            sealed, recipient: recipient, dossierID: dossier.id.value, key: key, id: id ?? SecureRandom.hexIdentifier())
        try await index.write("store a notification") { try $0.insert(notification: row) }
    }

    /// The outbox row for a planned notice, sealed under the dossier key.
    /// - Parameter newDocument: the id of the document the operation stores, if it stores one.
    func notificationRow(for notice: Notice, newDocument: String?, dossierID: String, key: SymmetricKey) throws(StoreError)
        -> NotificationRow
    {
        let documentID: String? =
            switch notice.subject {
            case .none: nil
            case .newDocument: newDocument
            case .document(let id): id.value
            }
        let sealed = SealedNotification(
            kind: notice.kind, message: notice.message, actor: notice.actor, documentID: documentID,
            hiddenFromRepresentatives: notice.hiddenFromRepresentatives ? true : nil)
        let id =
            switch notice.identity {
            case .fresh: SecureRandom.hexIdentifier()
            case .derived(let words): Self.derivedIdentifier(words)
            }
        return try notificationRow(sealed, recipient: notice.recipient, dossierID: dossierID, key: key, id: id)
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
    func notifications(
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
                    acknowledgedAt: row.acknowledgedAt, actor: sealed.actor, documentID: sealed.documentID,
                    hiddenFromRepresentatives: sealed.hiddenFromRepresentatives ?? false))
        }
        return records
    }

    /// The ids of the recipient's pending notices a representative may read (none that
    /// `hiding` hides), read in the caller's transaction. A notice that does not open under the
    /// dossier's key (one sealed by a request that raced a rekey) is left to the patient.
    func pendingNotices(
        of dossier: DossierRecord, recipient: NotificationRecipient, notHiddenBy hiding: ConfidentialCare,
        _ transaction: any IndexTransaction
    ) throws -> [String] {
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        return try transaction.notifications(dossierID: dossier.id.value, recipient: recipient.rawValue, includeAcknowledged: false)
            .filter { row in
                let sealed: SealedNotification? = try? Self.open(Array(row.sealed), key: key, associatedData: row.associatedData)
                return sealed.map {
                    !hiding.hides(noticeHiddenFromRepresentatives: $0.hiddenFromRepresentatives ?? false, actorID: $0.actor?.actorID)
                } ?? false
            }.map(\.id)
    }
}

extension Vault {
    /// A stable 32-hex identifier derived from `words` (for notices that must be stored once
    /// however often they are computed).
    static func derivedIdentifier(_ words: String) -> String {
        String(Hex.encode(SHA256Hasher.hash(Array(words.utf8))).prefix(32))
    }
}
