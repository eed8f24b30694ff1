import CoffreDomain
import Foundation

/// What the vault requires of its writes, whatever the engine: checked inside the transaction
/// that writes, on the rows as they are there.
extension IndexTransaction {
    /// A store racing a purge must not add a row under a destroyed key, nor one racing a rekey
    /// a row under the replaced key (which the dossier no longer opens documents with).
    func requireLiveDossier(_ id: String, keyGeneration: Int64) throws {
        guard let row = try dossier(id: id), row.state != "purging" else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        guard row.keyGeneration == keyGeneration else {
            throw StoreError(.conflict, "the dossier was given a new key while this request ran; nothing was changed, retry")
        }
    }

    /// Records a new document in a live dossier.
    func insertNewDocument(_ row: DocumentRow) throws {
        try requireLiveDossier(row.dossierId, keyGeneration: row.keyGeneration)
        try insert(document: row)
    }

    /// Records a new version and marks the one it replaces superseded (with `supersede`);
    /// refuses if that one is no longer current (replaced or deleted meanwhile).
    func insertReplacement(_ row: DocumentRow, supersede: (DocumentRow) throws -> DocumentRow) throws {
        try requireLiveDossier(row.dossierId, keyGeneration: row.keyGeneration)
        guard let replaced = row.replaces, let old = try document(id: replaced, dossierID: row.dossierId) else {
            throw StoreError(.documentNotFound, "the replaced document is gone")
        }
        guard old.status == DocumentStatus.current.rawValue else {
            throw StoreError(.conflict, "document \(replaced) is \(old.status); only the current version can be replaced")
        }
        try update(document: try supersede(old))
        try insert(document: row)
    }

    /// Replaces every version of the document `id` belongs to with `transform`'s result.
    /// - Parameter keyGeneration: the dossier key generation `transform` seals with.
    /// - Returns: the named version as it now is.
    func updateDocumentChain(
        id: String, dossierID: String, keyGeneration: Int64,
        _ transform: (_ target: DocumentRow, _ row: DocumentRow) throws -> DocumentRow
    ) throws -> DocumentRow {
        try requireLiveDossier(dossierID, keyGeneration: keyGeneration)
        guard let target = try document(id: id, dossierID: dossierID) else {
            throw StoreError(.documentNotFound, "no document \(id) in this dossier")
        }
        var updatedTarget = target
        for versionID in try versionChain(of: id) {
            guard let row = try document(id: versionID, dossierID: dossierID) else { continue }
            let updated = try transform(target, row)
            try update(document: updated)
            if versionID == id { updatedTarget = updated }
        }
        return updatedTarget
    }

    /// Inserts the vault key unless one exists, and returns the one that is stored (so that two
    /// first starts racing each other agree).
    func insertVaultKeyIfAbsent(_ row: VaultKeyRow) throws -> VaultKeyRow {
        if let existing = try vaultKey(purpose: row.purpose) { return existing }
        try insert(vaultKey: row)
        return row
    }
}
