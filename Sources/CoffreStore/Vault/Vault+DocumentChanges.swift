import CoffreCrypto
public import CoffreDomain
import Foundation
import Logging

extension Vault {
    /// A change to one document version that keeps its content.
    public enum DocumentChange: Sendable {
        /// Mask (true) or unmask (false) for professionals.
        case mask(Bool)
        /// Release a document hidden from the patient, at the given time.
        case release(at: Int64)
        /// Delete logically: the version stays until the dossier is purged.
        case delete
    }

    /// Applies `change` to document `id` of the patient's dossier and returns the new record.
    /// - Throws: `documentNotFound`, or `conflict` for a deletion of a version that is not
    ///   current or a release of a document that is not hidden.
    public func change(_ id: DocumentID, in ins: INS, _ change: DocumentChange) async throws(StoreError) -> DocumentRecord {
        let (dossier, key, _) = try await openDossier(ins)
        let vault = self
        // A document is all its versions: masking, releasing or deleting one applies to every
        // version, or the older ones would stay readable through the history.
        let row = try await index.updateDocumentChain(id: id.value, dossierID: dossier.id, keyGeneration: dossier.keyGeneration) {
            target, row in
            try vault.resealed(row, key: key) { (row, fields) throws(StoreError) in
                switch change {
                case .mask(let masked):
                    fields.masked = masked
                case .release(let time):
                    guard fields.hiddenFromPatient || row.id != target.id else {
                        throw StoreError(.conflict, "document \(id) is not hidden from the patient")
                    }
                    if fields.hiddenFromPatient && fields.releasedAt == nil { fields.releasedAt = time }
                case .delete:
                    guard target.status == DocumentStatus.current.rawValue else {
                        throw StoreError(.conflict, "document \(id) is \(target.status); only the current version can be deleted")
                    }
                    row.status = DocumentStatus.deleted.rawValue
                }
            }
        }
        logger.info("document changed", metadata: ["dossier.id": "\(dossier.id)", "document.id": "\(id)"])
        return try record(from: row, dossierKey: key)
    }
}
