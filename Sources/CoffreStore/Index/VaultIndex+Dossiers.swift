import CoffreDomain
import Foundation
import GRDB

/// Dossier rows.
extension VaultIndex {
    func insertDossier(_ row: DossierRow) async throws(StoreError) {
        try await write("create a dossier") { db in try Self.insertDossier(row, db) }
    }

    /// Inserts a new dossier, unless the patient has one (two creations at once: one wins).
    static func insertDossier(_ row: DossierRow, _ db: Database) throws {
        if try DossierRow.filter(Column("ins_hash") == row.insHash).fetchCount(db) > 0 {
            throw StoreError(.dossierExists, "this patient already has a dossier")
        }
        try row.insert(db)
    }

    static func update(dossier row: DossierRow, _ db: Database) throws { try row.update(db) }

    /// A dossier row by id, read in the caller's transaction.
    static func dossierRow(id: String, _ db: Database) throws -> DossierRow? {
        try DossierRow.fetchOne(db, key: id)
    }

    /// Re-reads a dossier row and replaces it with `transform`'s result, in one transaction, so
    /// that concurrent changes to the same dossier apply one after the other.
    /// - Returns: the row as it now is, and whether `transform` changed it (an unchanged row
    ///   is not written).
    func updateDossier(
        insHash: Data, _ transform: @Sendable @escaping (DossierRow) throws -> DossierRow
    ) async throws(StoreError) -> (row: DossierRow, changed: Bool) {
        try await write("update a dossier") { db in
            guard let row = try DossierRow.filter(Column("ins_hash") == insHash).fetchOne(db), row.state != "purging" else {
                throw StoreError(.dossierNotFound, "this patient has no dossier")
            }
            let updated = try transform(row)
            guard updated.sealed != row.sealed || updated.state != row.state else { return (row, false) }
            try updated.update(db)
            return (updated, true)
        }
    }

    func dossier(insHash: Data) throws(StoreError) -> DossierRow? {
        try lookUp("read a dossier") { db in
            try DossierRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM dossier WHERE ins_hash = ?"), arguments: [insHash])
        }
    }

    /// A store racing a purge must not add a row under a destroyed key, nor one racing a rekey
    /// a row under the replaced key (which the dossier no longer opens documents with).
    static func requireLiveDossier(_ id: String, keyGeneration: Int64, _ db: Database) throws {
        let row = try Row.fetchOne(db, sql: "SELECT state, key_generation FROM dossier WHERE id = ?", arguments: [id])
        guard let row, row[0] as String != "purging" else { throw StoreError(.dossierNotFound, "this patient has no dossier") }
        guard row[1] as Int64 == keyGeneration else {
            throw StoreError(.conflict, "the dossier was given a new key while this request ran; nothing was changed, retry")
        }
    }
}
