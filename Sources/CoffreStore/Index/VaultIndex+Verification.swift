import CoffreDomain
import GRDB

/// What `verify` reads, a page at a time.
extension VaultIndex {
    /// SQLite's own checks: page structure (`quick_check`) and foreign keys.
    func integrityProblems() async throws(StoreError) -> [String] {
        try await read("check the index") { db in
            var problems = try String.fetchAll(db, sql: "PRAGMA quick_check").filter { $0 != "ok" }.map { "index: \($0)" }
            let orphans = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
            if !orphans.isEmpty { problems.append("index: \(orphans.count) row(s) violate a foreign key") }
            return problems
        }
    }

    /// Dossiers not being purged, after `cursor` in id order, `limit` at most.
    func dossiers(after cursor: String, limit: Int) async throws(StoreError) -> [DossierRow] {
        try await read("list dossiers") { db in
            try DossierRow.filter(Column("state") != "purging" && Column("id") > cursor).order(Column("id")).limit(limit).fetchAll(db)
        }
    }

    /// How many documents the dossiers not being purged hold.
    func documentCountOutsidePurges() async throws(StoreError) -> Int {
        try await read("count documents") { db in
            try Int.fetchOne(
                db, sql: "SELECT count(*) FROM document WHERE dossier_id IN (SELECT id FROM dossier WHERE state != 'purging')") ?? 0
        }
    }

    /// Up to `limit` ids of documents of dossiers not being purged, picked at random by SQLite
    /// (which keeps only `limit` rows while it scans).
    func randomDocumentIDs(limit: Int) async throws(StoreError) -> [String] {
        try await read("pick documents") { db in
            try String.fetchAll(
                db,
                sql:
                    "SELECT id FROM document WHERE dossier_id IN (SELECT id FROM dossier WHERE state != 'purging') ORDER BY random() LIMIT ?",
                arguments: [limit])
        }
    }

    /// The ids of a dossier's documents, all versions (through `document_by_dossier_time`).
    func documentIDs(dossierID: String) async throws(StoreError) -> [String] {
        try await read("list documents") { db in
            try String.fetchAll(db, sql: "SELECT id FROM document WHERE dossier_id = ?", arguments: [dossierID])
        }
    }

    /// A dossier's row and the rows of these of its documents (by primary key, in no
    /// particular order), read in one snapshot.
    func dossierAndDocuments(dossierID: String, documentIDs: [String]) async throws(StoreError) -> (DossierRow?, [DocumentRow]) {
        try await read("read documents") { db in
            let dossier = try DossierRow.fetchOne(db, key: dossierID)
            let documents = try DocumentRow.filter(documentIDs.contains(Column("id")) && Column("dossier_id") == dossierID).fetchAll(db)
            return (dossier, documents)
        }
    }

    /// Every document row of a dossier, all versions.
    func allDocuments(dossierID: String) async throws(StoreError) -> [DocumentRow] {
        try await read("list documents") { db in try DocumentRow.filter(Column("dossier_id") == dossierID).fetchAll(db) }
    }
}
