import CoffreDomain
import Foundation
import GRDB

/// Master key versions, the rotation's cursor, and every wrapped key a rotation or a rekey
/// rewraps; each function runs in the caller's write (or read) transaction.
extension VaultIndex {
    // MARK: Versions

    static func masterKeys(_ db: Database) throws -> [MasterKeyRow] {
        try MasterKeyRow.order(Column("version")).fetchAll(db)
    }

    static func masterKey(version: UInt32, _ db: Database) throws -> MasterKeyRow? {
        try MasterKeyRow.fetchOne(db, key: Int64(version))
    }

    static func insert(masterKey row: MasterKeyRow, _ db: Database) throws { try row.insert(db) }

    static func update(masterKey row: MasterKeyRow, _ db: Database) throws { try row.update(db) }

    /// Makes `version` the active one; any other active version becomes available.
    static func activate(version: UInt32, _ db: Database) throws {
        try db.execute(
            sql: "UPDATE master_key SET state = 'available' WHERE state = 'active' AND version != ?", arguments: [Int64(version)])
        try db.execute(sql: "UPDATE master_key SET state = 'active' WHERE version = ?", arguments: [Int64(version)])
    }

    /// When purges last destroyed dossier keys, and how many dossiers they were, if ever.
    static func purgeRecord(_ db: Database) throws -> (lastAt: Int64, dossiers: Int)? {
        try Row.fetchOne(db, sql: "SELECT last_purge_at, dossiers_purged FROM purge_record WHERE id = 1").map { ($0[0], $0[1]) }
    }

    /// How many keys each master key version wraps, counted through `dossier_by_master_version`
    /// so that a start does not read every dossier row.
    static func keyUsage(_ db: Database) throws -> KeyUsage {
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

    static func rotation(_ db: Database) throws -> KeyRotationRow? { try KeyRotationRow.fetchOne(db) }

    static func save(rotation: KeyRotationRow, _ db: Database) throws { try rotation.save(db) }

    /// Up to `limit` dossier keys after the rotation's cursor, in rowid order.
    static func dossierKeys(after cursor: Int64, limit: Int, _ db: Database) throws -> [WrappedDossierKey] {
        try Row.fetchAll(
            db, sql: "SELECT rowid, id, master_version, wrapped_key FROM dossier WHERE rowid > ? ORDER BY rowid LIMIT ?",
            arguments: [cursor, limit]
        ).map { WrappedDossierKey(position: $0[0], dossierID: $0[1], masterVersion: $0[2], wrappedKey: $0[3]) }
    }

    static func updateDossierKey(at position: Int64, masterVersion: UInt32, wrappedKey: Data, _ db: Database) throws {
        try db.cachedStatement(sql: "UPDATE dossier SET master_version = ?, wrapped_key = ? WHERE rowid = ?")
            .execute(arguments: [Int64(masterVersion), wrappedKey, position])
    }

    /// Dossier keys (live dossiers) wrapped by another version than `version`.
    static func dossierKeyCount(notUnder version: UInt32, _ db: Database) throws -> Int {
        try Int.fetchOne(
            db, sql: "SELECT COUNT(*) FROM dossier WHERE master_version > 0 AND master_version != ?", arguments: [Int64(version)]) ?? 0
    }

    static func vaultKeys(notUnder version: UInt32, _ db: Database) throws -> [VaultKeyRow] {
        try VaultKeyRow.filter(Column("master_version") != Int64(version)).fetchAll(db)
    }

    static func update(vaultKey row: VaultKeyRow, _ db: Database) throws { try row.update(db) }

    static func archivedKeys(notUnder version: UInt32, _ db: Database) throws -> [ArchivedDossierKeyRow] {
        try ArchivedDossierKeyRow.filter(Column("master_version") != Int64(version)).fetchAll(db)
    }

    static func update(archivedKey row: ArchivedDossierKeyRow, _ db: Database) throws { try row.update(db) }

    // MARK: A dossier's earlier keys (rekeys)

    static func insert(archivedKey row: ArchivedDossierKeyRow, _ db: Database) throws { try row.insert(db) }

    /// A dossier's archived keys, newest generation first.
    func archivedKeys(dossierID: String) async throws(StoreError) -> [ArchivedDossierKeyRow] {
        try await read("read a dossier's earlier keys") { db in
            try ArchivedDossierKeyRow.filter(Column("dossier_id") == dossierID).order(Column("key_generation").desc).fetchAll(db)
        }
    }
}

/// How many keys each master key version wraps.
struct KeyUsage {
    var dossierKeys: [UInt32: Int] = [:]
    var archivedKeys: [UInt32: Int] = [:]
    var vaultKeys: [UInt32: Int] = [:]

    var versions: Set<UInt32> { Set(dossierKeys.keys).union(archivedKeys.keys).union(vaultKeys.keys) }

    func total(_ version: UInt32) -> Int {
        (dossierKeys[version] ?? 0) + (archivedKeys[version] ?? 0) + (vaultKeys[version] ?? 0)
    }
}

/// A dossier key as a rotation reads it: where its row is, and what wraps it.
struct WrappedDossierKey {
    /// The row's place in the rotation's order (SQLite's rowid).
    var position: Int64
    var dossierID: String
    var masterVersion: Int64
    var wrappedKey: Data
}
