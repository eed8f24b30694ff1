import CoffreDomain
import Foundation
import GRDB

/// Retention and purge: the candidates, the destruction of a dossier key, the rows' removal,
/// and the checkpoint that leaves no old page of a destroyed key in the WAL.
extension VaultIndex {
    /// Dossiers the retention job must look at: closed ones due by `now`, and any purge left
    /// unfinished (`purging`), after `cursor` in id order.
    func retentionCandidates(dueBy now: Int64, after cursor: String, limit: Int) async throws(StoreError) -> [DossierRow] {
        try await read("find dossiers due for purge") { db in
            try DossierRow.filter(
                ((Column("state") == "closed" && Column("purge_after") <= now) || Column("state") == "purging") && Column("id") > cursor
            ).order(Column("id")).limit(limit).fetchAll(db)
        }
    }

    func countRetentionCandidates(dueBy now: Int64) async throws(StoreError) -> Int {
        try await read("count dossiers due for purge") { db in
            try DossierRow.filter((Column("state") == "closed" && Column("purge_after") <= now) || Column("state") == "purging").fetchCount(
                db)
        }
    }

    /// Step one of a purge: destroy the dossier key (and the sealed record) in place. From
    /// this commit on, nothing of the dossier can be decrypted, wherever copies of its blobs are.
    ///
    /// Destroys only if the sealed record is still the one the purge decision was made on, so a
    /// hold or a reopening that lands in between wins. Returns whether the key was destroyed.
    func destroyDossierKey(id: String, ifSealedIs sealed: Data, at now: Int64) async throws(StoreError) -> Bool {
        try await write("destroy a dossier key") { db in
            try db.execute(
                sql:
                    "UPDATE dossier SET state = 'purging', wrapped_key = x'', sealed = x'', master_version = 0 WHERE id = ? AND sealed = ?",
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
    }

    /// Last step of a purge: the rows go (documents and notifications by cascade).
    func deleteDossier(id: String) async throws(StoreError) {
        try await write("delete a purged dossier") { db in
            try db.execute(sql: "DELETE FROM document WHERE dossier_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM dossier WHERE id = ?", arguments: [id])
        }
    }

    /// Moves every WAL page into the database and truncates the WAL, so that rows deleted with
    /// `secure_delete` leave no old copy behind in the log.
    /// A reader in the middle of a transaction makes the checkpoint busy: retry for a while
    /// rather than leave the destroyed key's old page in the WAL.
    func checkpointTruncate() async throws(StoreError) {
        var lastError: (any Error)? = nil
        for _ in 0..<100 {
            do {
                _ = try await writeWithoutTransaction("checkpoint the index") { db in try db.checkpoint(.truncate) }
                return
            } catch {
                lastError = error
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        throw StoreError(.io, "cannot checkpoint the index (the WAL still holds old pages): \(lastError.map { "\($0)" } ?? "busy")")
    }
}
