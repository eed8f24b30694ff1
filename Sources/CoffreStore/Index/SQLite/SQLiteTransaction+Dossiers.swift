import CoffreDomain
import Foundation
import GRDB

/// Dossier rows, and the purge's two steps.
extension SQLiteTransaction {
    func dossier(id: String) throws -> DossierRow? {
        try DossierRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM dossier WHERE id = ?"), arguments: [id])
    }

    func dossier(insHash: Data) throws -> DossierRow? {
        try DossierRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM dossier WHERE ins_hash = ?"), arguments: [insHash])
    }

    func dossiers(after cursor: String, limit: Int) throws -> [DossierRow] {
        try DossierRow.filter(Column("state") != "purging" && Column("id") > cursor).order(Column("id")).limit(limit).fetchAll(db)
    }

    func retentionCandidates(dueBy now: Int64, after cursor: String, limit: Int) throws -> [DossierRow] {
        try DossierRow.filter(
            ((Column("state") == "closed" && Column("purge_after") <= now) || Column("state") == "purging") && Column("id") > cursor
        ).order(Column("id")).limit(limit).fetchAll(db)
    }

    func retentionCandidateCount(dueBy now: Int64) throws -> Int {
        try DossierRow.filter((Column("state") == "closed" && Column("purge_after") <= now) || Column("state") == "purging").fetchCount(db)
    }

    func insert(dossier row: DossierRow) throws {
        if try DossierRow.filter(Column("ins_hash") == row.insHash).fetchCount(db) > 0 {
            throw StoreError(.dossierExists, "this patient already has a dossier")
        }
        try row.insert(db)
    }

    func update(dossier row: DossierRow) throws { try row.update(db) }

    func update(dossierSeal row: DossierRow) throws {
        try db.cachedStatement(sql: "UPDATE dossier SET generation = ?, document_count = ?, document_digest = ?, seal = ? WHERE id = ?")
            .execute(arguments: [row.generation, row.documentCount, row.documentDigest, row.seal, row.id])
    }

    func dossierGeneration(id: String) throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT generation FROM dossier WHERE id = ?"), arguments: [id])
    }

    /// Through the partial index `dossier_unsealed`.
    func unsealedDossierIDs(limit: Int) throws -> [String] {
        try String.fetchAll(
            db, sql: "SELECT id FROM dossier WHERE seal IS NULL AND state != 'purging' ORDER BY id LIMIT ?", arguments: [limit])
    }

    func destroyDossierKey(id: String, ifSealedIs sealed: Data, at now: Int64) throws -> Bool {
        try db.execute(
            sql: "UPDATE dossier SET state = 'purging', wrapped_key = x'', sealed = x'', master_version = 0 WHERE id = ? AND sealed = ?",
            arguments: [id, sealed])
        guard db.changesCount == 1 else { return false }
        try db.execute(sql: "DELETE FROM dossier_key_archive WHERE dossier_id = ?", arguments: [id])
        try db.execute(
            sql: """
                INSERT INTO purge_record (id, last_purge_at, dossiers_purged) VALUES (1, ?, 1)
                ON CONFLICT(id) DO UPDATE SET last_purge_at = max(last_purge_at, excluded.last_purge_at),
                    dossiers_purged = dossiers_purged + 1
                """,
            arguments: [now])
        return true
    }

    /// Documents and notifications go by cascade; documents first, since a document names the
    /// version it replaces.
    func deleteDossier(id: String) throws {
        try db.execute(sql: "DELETE FROM document WHERE dossier_id = ?", arguments: [id])
        try db.execute(sql: "DELETE FROM dossier WHERE id = ?", arguments: [id])
    }
}
