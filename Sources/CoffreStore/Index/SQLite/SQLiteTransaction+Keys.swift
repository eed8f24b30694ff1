import CoffreDomain
import Foundation
import GRDB

/// The vault's own keys, master key versions, the rotation's cursor, and every wrapped key a
/// rotation or a rekey rewraps.
extension SQLiteTransaction {
    // MARK: The vault's keys (the INS look-up key, the trace signing seed)

    func vaultKey(purpose: String) throws -> VaultKeyRow? { try VaultKeyRow.fetchOne(db, key: purpose) }

    func insert(vaultKey row: VaultKeyRow) throws { try row.insert(db) }

    func update(vaultKey row: VaultKeyRow) throws { try row.update(db) }

    func vaultKeys(notUnder version: UInt32) throws -> [VaultKeyRow] {
        try VaultKeyRow.filter(Column("master_version") != Int64(version)).fetchAll(db)
    }

    // MARK: Master key versions

    func masterKeys() throws -> [MasterKeyRow] { try MasterKeyRow.order(Column("version")).fetchAll(db) }

    func masterKey(version: UInt32) throws -> MasterKeyRow? { try MasterKeyRow.fetchOne(db, key: Int64(version)) }

    func insert(masterKey row: MasterKeyRow) throws { try row.insert(db) }

    func update(masterKey row: MasterKeyRow) throws { try row.update(db) }

    func activate(version: UInt32) throws {
        try db.execute(
            sql: "UPDATE master_key SET state = 'available' WHERE state = 'active' AND version != ?", arguments: [Int64(version)])
        try db.execute(sql: "UPDATE master_key SET state = 'active' WHERE version = ?", arguments: [Int64(version)])
    }

    func purgeRecord() throws -> (lastAt: Int64, dossiers: Int)? {
        try Row.fetchOne(db, sql: "SELECT last_purge_at, dossiers_purged FROM purge_record WHERE id = 1").map { ($0[0], $0[1]) }
    }

    /// Counted through `dossier_by_master_version`, so that a start does not read every
    /// dossier row.
    func keyUsage() throws -> KeyUsage {
        func counts(_ sql: String) throws -> [UInt32: Int] {
            var result: [UInt32: Int] = [:]
            for row in try Row.fetchAll(db, sql: sql) {
                let version: Int64 = row[0]
                result[UInt32(truncatingIfNeeded: version), default: 0] += row[1] as Int
            }
            return result
        }
        return KeyUsage(
            dossierKeys: try counts("SELECT master_version, COUNT(*) FROM dossier WHERE master_version > 0 GROUP BY master_version"),
            archivedKeys: try counts("SELECT master_version, COUNT(*) FROM dossier_key_archive GROUP BY master_version"),
            vaultKeys: try counts("SELECT master_version, COUNT(*) FROM vault_key GROUP BY master_version"))
    }

    // MARK: The rotation

    func rotation() throws -> KeyRotationRow? { try KeyRotationRow.fetchOne(db) }

    func save(rotation: KeyRotationRow) throws { try rotation.save(db) }

    /// In rowid order.
    func dossierKeys(after cursor: Int64, limit: Int) throws -> [WrappedDossierKey] {
        try Row.fetchAll(
            db, sql: "SELECT rowid, id, master_version, wrapped_key FROM dossier WHERE rowid > ? ORDER BY rowid LIMIT ?",
            arguments: [cursor, limit]
        ).map { WrappedDossierKey(position: $0[0], dossierID: $0[1], masterVersion: $0[2], wrappedKey: $0[3]) }
    }

    func updateDossierKey(at position: Int64, masterVersion: UInt32, wrappedKey: Data) throws {
        try db.cachedStatement(sql: "UPDATE dossier SET master_version = ?, wrapped_key = ? WHERE rowid = ?")
            .execute(arguments: [Int64(masterVersion), wrappedKey, position])
    }

    func dossierKeyCount(notUnder version: UInt32) throws -> Int {
        try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM dossier WHERE master_version > 0 AND master_version != ?", arguments: [Int64(version)]) ?? 0
    }

    // MARK: A dossier's earlier keys (rekeys)

    func archivedKeys(notUnder version: UInt32) throws -> [ArchivedDossierKeyRow] {
        try ArchivedDossierKeyRow.filter(Column("master_version") != Int64(version)).fetchAll(db)
    }

    func archivedKeys(dossierID: String) throws -> [ArchivedDossierKeyRow] {
        try ArchivedDossierKeyRow.filter(Column("dossier_id") == dossierID).order(Column("key_generation").desc).fetchAll(db)
    }

    func insert(archivedKey row: ArchivedDossierKeyRow) throws { try row.insert(db) }

    func update(archivedKey row: ArchivedDossierKeyRow) throws { try row.update(db) }
}
