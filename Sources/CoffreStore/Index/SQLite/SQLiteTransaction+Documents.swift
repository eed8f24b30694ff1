import CoffreDomain
import Foundation
import GRDB

/// Document rows, and the blob names they give.
extension SQLiteTransaction {
    func document(id: String, dossierID: String) throws -> DocumentRow? {
        try DocumentRow.fetchOne(
            db.cachedStatement(sql: "SELECT * FROM document WHERE id = ? AND dossier_id = ?"), arguments: [id, dossierID])
    }

    func documents(dossierID: String, includeSuperseded: Bool) throws -> [DocumentRow] {
        var request = DocumentRow.filter(Column("dossier_id") == dossierID)
        if !includeSuperseded { request = request.filter(Column("status") == "current") }
        return try request.order(Column("uploaded_at"), Column("rowid")).fetchAll(db)
    }

    func documents(ids: [String], dossierID: String) throws -> [DocumentRow] {
        try DocumentRow.filter(ids.contains(Column("id")) && Column("dossier_id") == dossierID).fetchAll(db)
    }

    func versionChain(of id: String) throws -> [String] {
        try String.fetchAll(
            db,
            sql: """
                WITH RECURSIVE back(id, replaces) AS (
                    SELECT id, replaces FROM document WHERE id = ?1
                    UNION SELECT d.id, d.replaces FROM document d JOIN back b ON d.id = b.replaces
                ), forward(id) AS (
                    SELECT id FROM document WHERE id = ?1
                    UNION SELECT d.id FROM document d JOIN forward f ON d.replaces = f.id
                )
                SELECT id FROM back UNION SELECT id FROM forward
                """, arguments: [id])
    }

    /// Through `document_by_dossier_time`.
    func documentIDs(dossierID: String) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT id FROM document WHERE dossier_id = ?", arguments: [dossierID])
    }

    /// Through `document_version_by_dossier`, which covers it.
    func documentVersions(dossierID: String) throws -> [DocumentVersion] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT id, version FROM document WHERE dossier_id = ?"), arguments: [dossierID]
        ).map { row in
            guard case .string(let id) = (row[0] as DatabaseValue).storage, case .int64(let version) = (row[1] as DatabaseValue).storage
            else { return .damaged }
            return DocumentVersion(id: id, version: version)
        }
    }

    func blobNames(dossierID: String) throws -> [BlobName] {
        try Row.fetchAll(db, sql: "SELECT id, blob_version FROM document WHERE dossier_id = ?", arguments: [dossierID])
            .compactMap(Self.blobName)
    }

    /// Packed, 24 bytes each, for the reconciliation at start: a million rows take 24 MB and no
    /// string outlives its row. `unreadable` counts the rows whose id or blob version is not
    /// what this code writes (damage): the caller must then remove no blob, since one of them
    /// may be such a row's.
    func packedBlobNames() throws -> (names: [PackedBlobName], unreadable: Int) {
        var names: [PackedBlobName] = []
        var unreadable = 0
        let rows = try Row.fetchCursor(db, sql: "SELECT id, blob_version FROM document")
        while let row = try rows.next() {
            // The id's bytes as SQLite holds them (no string made), the version as stored.
            // A damaged row must not stop the start; it is counted instead.
            guard case .int64(let version) = (row[1] as DatabaseValue).storage,
                let name = try row.withUnsafeData(atIndex: 0, { id in id?.withUnsafeBytes { PackedBlobName(id: $0, version: version) } })
            else {
                unreadable += 1
                continue
            }
            names.append(name)
        }
        return (names, unreadable)
    }

    /// Ids from the database are checked again before they become paths: a row with an
    /// invalid id names no blob. Read as stored values: a damaged row (a NULL id, a version
    /// that is not a number) is nil, where a typed read would stop the process.
    static func blobName(_ row: Row) -> BlobName? {
        guard case .string(let id) = (row[0] as DatabaseValue).storage, case .int64(let version) = (row[1] as DatabaseValue).storage,
            let document = DocumentID(id), let version = UInt32(exactly: version)
        else { return nil }
        return BlobName(document, version: version)
    }

    func documentCountOutsidePurges() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT count(*) FROM document WHERE dossier_id IN (SELECT id FROM dossier WHERE state != 'purging')")
            ?? 0
    }

    /// Picked at random by SQLite, which keeps only `limit` rows while it scans.
    func randomDocumentIDs(limit: Int) throws -> [String] {
        try String.fetchAll(
            db,
            sql: "SELECT id FROM document WHERE dossier_id IN (SELECT id FROM dossier WHERE state != 'purging') ORDER BY random() LIMIT ?",
            arguments: [limit])
    }

    func insert(document row: DocumentRow) throws { try row.insert(db) }

    func update(document row: DocumentRow) throws { try row.update(db) }
}
