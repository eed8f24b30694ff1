import CoffreCrypto
import CoffreDomain
import Foundation
import Synchronization

/// What applying changes in a transaction reports back (it runs in the writer's closure).
final class AppliedChanges: Sendable {
    let acknowledged = Mutex(0)
}

extension Vault {
    /// Applies planned changes in the caller's transaction, each to the dossier as it is there,
    /// so that concurrent changes to one dossier apply one after the other and each is checked
    /// against the rules on the state it finds (a change the rules refuse there throws).
    /// A new dossier, a new document and a destruction have paths of their own.
    func apply(_ changes: [DossierChange], to dossier: DossierRecord, _ transaction: any IndexTransaction, report: AppliedChanges? = nil)
        throws
    {
        for change in changes {
            switch change {
            case .create, .storeDocument, .destroy:
                continue
            case .settings(let change):
                try updateSealedFields(of: dossier, transaction) { fields in fields.settings = try change.applied(to: fields.settings) }
            case .lifecycle(let change):
                let now = clock.now()
                try updateSealedFields(of: dossier, transaction) { fields in
                    do throws(LifecycleError) {
                        fields.lifecycle = try change.applied(to: fields.lifecycle, at: now)
                    } catch {
                        throw Refusal.illegalTransition(error)
                    }
                }
            case .document(let id, let change):
                _ = try changeDocument(id, change, in: dossier, transaction)
            case .acknowledgeNotices(let recipient, let ids, let hiding):
                var acknowledged = ids
                if let hiding {
                    // A representative acknowledges only what they may read.
                    let visible = Set(try pendingNotices(of: dossier, recipient: recipient, notHiddenBy: hiding, transaction))
                    acknowledged = (ids ?? Array(visible)).filter(visible.contains)
                }
                let count = try transaction.acknowledgeNotifications(
                    dossierID: dossier.id.value, recipient: recipient.rawValue, ids: acknowledged, at: clock.now())
                report?.acknowledged.withLock { $0 += count }
            }
        }
    }

    /// Re-reads the dossier's row in the transaction, applies `change` to its sealed fields and
    /// seals them again; the clear `state` and `purge_after` columns follow the lifecycle, and
    /// the dossier's seal moves on a generation.
    private func updateSealedFields(
        of dossier: DossierRecord, _ transaction: any IndexTransaction, _ change: (inout SealedDossierFields) throws -> Void
    ) throws {
        guard let row = try transaction.dossier(id: dossier.id.value), row.state != "purging" else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        try seal.check(row, traced: nil)
        guard let updated = try resealedDossier(row, ins: dossier.ins, change) else { return }
        try transaction.update(dossier: updated)
        try transaction.update(dossierSeal: seal.resealed(updated))
    }

    /// The row with `change` applied to its sealed fields, sealed again (its seal not yet
    /// moved on); nil if nothing changed.
    private func resealedDossier(_ row: DossierRow, ins: INS, _ change: (inout SealedDossierFields) throws -> Void) throws -> DossierRow? {
        let (key, fields) = try openDossierRow(row, ins: ins)
        var updated = fields
        try change(&updated)
        guard updated.settings != fields.settings || updated.lifecycle != fields.lifecycle else { return nil }
        var copy = row
        copy.state = updated.lifecycle.state.rawValue
        copy.purgeAfter = updated.lifecycle.purgeDate(rules: configuration.retention)
        copy.sealed = Data(try Self.seal(updated, key: key, associatedData: Self.dossierAD(DossierID(unchecked: row.id))))
        return copy
    }

    /// Applies a document change to every version of the document, and seals the dossier over
    /// the rows as they now are, in the caller's transaction.
    func changeDocument(_ id: DocumentID, _ change: DocumentChange, in dossier: DossierRecord, _ transaction: any IndexTransaction) throws
        -> DocumentRow
    {
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        var (removed, added): ([DocumentRow], [DocumentRow]) = ([], [])
        let target = try transaction.updateDocumentChain(
            id: id.value, dossierID: dossier.id.value, keyGeneration: Int64(dossier.keyGeneration)
        ) { target, row in
            removed.append(row)
            let updated = try self.resealed(row, key: key) { (row, fields) throws(StoreError) in
                var version = DocumentVersionState(
                    isNamed: row.id == target.id, status: DocumentStatus(rawValue: row.status) ?? .current, masked: fields.masked,
                    hiddenFromPatient: fields.hiddenFromPatient, releasedAt: fields.releasedAt)
                var named = version
                named.status = DocumentStatus(rawValue: target.status) ?? .current
                do throws(Refusal) {
                    try change.apply(to: &version, named: named)
                } catch {
                    throw StoreError(.conflict, "document \(id): \(error.explanation)")
                }
                fields.masked = version.masked
                fields.releasedAt = version.releasedAt
                row.status = version.status.rawValue
            }
            added.append(updated)
            return updated
        }
        try reseal(dossier.id.value, removing: removed, adding: added, transaction)
        return target
    }

    /// A new dossier for `ins`: its row (not yet written) and its record, key open.
    func newDossier(for ins: INS) throws(StoreError) -> (DossierRow, DossierRecord) {
        let id = DossierID(unchecked: SecureRandom.hexIdentifier())
        let masterKeys = self.masterKeys.current
        let version = masterKeys.activeVersion
        let dossierKey = try Self.crypto { () throws(CryptoError) in try SymmetricKey.random(in: arena) }
        let wrapped = KeyWrap.wrap(dossierKey, with: masterKeys.activeKey, context: Self.dossierKeyContext(id, version))
        let now = clock.now()
        let fields = SealedDossierFields(ins: ins.value, settings: DossierSettings(), lifecycle: DossierLifecycle(createdAt: now))
        let sealed = try Self.seal(fields, key: dossierKey, associatedData: Self.dossierAD(id))
        let row = seal.resealed(
            DossierRow(
                id: id.value, insHash: insHash(ins), state: "active", createdAt: now,
                masterVersion: Int64(version), keyGeneration: 1, wrappedKey: Data(wrapped), sealed: Data(sealed)),
            over: [])
        let record = DossierRecord(
            id: id, ins: ins, state: "active", createdAt: now, masterKeyVersion: version, keyGeneration: 1, settings: fields.settings,
            lifecycle: fields.lifecycle, key: dossierKey)
        return (row, record)
    }
}
