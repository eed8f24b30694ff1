import CoffreDomain
import Foundation
import GRDB

/// Document rows, and the blob names they give.
extension VaultIndex {
    /// Re-reads every version of the document `id` belongs to (the versions it replaced and
    /// those that replaced it) and replaces each with `transform`'s result, in one transaction.
    /// - Parameter keyGeneration: the dossier key generation `transform` seals with.
    func updateDocumentChain(
        id: String, dossierID: String, keyGeneration: Int64,
        _ transform: @Sendable @escaping (_ target: DocumentRow, _ row: DocumentRow) throws -> DocumentRow
    ) async throws(StoreError) -> DocumentRow {
        try await write("update a document's versions") { db in
            try Self.updateDocumentChain(id: id, dossierID: dossierID, keyGeneration: keyGeneration, db, transform)
        }
    }

    /// `updateDocumentChain`, in the caller's transaction.
    static func updateDocumentChain(
        id: String, dossierID: String, keyGeneration: Int64, _ db: Database,
        _ transform: (_ target: DocumentRow, _ row: DocumentRow) throws -> DocumentRow
    ) throws -> DocumentRow {
        try requireLiveDossier(dossierID, keyGeneration: keyGeneration, db)
        guard let target = try DocumentRow.filter(Column("id") == id && Column("dossier_id") == dossierID).fetchOne(db) else {
            throw StoreError(.documentNotFound, "no document \(id) in this dossier")
        }
        let chain = try String.fetchAll(
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
        var updatedTarget = target
        for versionID in chain {
            guard let row = try DocumentRow.filter(Column("id") == versionID && Column("dossier_id") == dossierID).fetchOne(db) else {
                continue
            }
            let updated = try transform(target, row)
            try updated.update(db)
            if versionID == id { updatedTarget = updated }
        }
        return updatedTarget
    }

    /// Records a new version and marks the one it replaces superseded, in one transaction;
    /// refuses if that one is no longer current (replaced or deleted meanwhile).
    static func insertReplacement(_ row: DocumentRow, supersede transform: (DocumentRow) throws -> DocumentRow, _ db: Database) throws {
        try requireLiveDossier(row.dossierId, keyGeneration: row.keyGeneration, db)
        guard let replaced = row.replaces,
            let old = try DocumentRow.filter(Column("id") == replaced && Column("dossier_id") == row.dossierId).fetchOne(db)
        else {
            throw StoreError(.documentNotFound, "the replaced document is gone")
        }
        guard old.status == "current" else {
            throw StoreError(.conflict, "document \(replaced) is \(old.status); only the current version can be replaced")
        }
        try transform(old).update(db)
        try row.insert(db)
    }

    static func insertDocument(_ row: DocumentRow, _ db: Database) throws {
        try requireLiveDossier(row.dossierId, keyGeneration: row.keyGeneration, db)
        try row.insert(db)
    }

    func document(id: String, dossierID: String) throws(StoreError) -> DocumentRow? {
        try lookUp("read a document") { db in
            try DocumentRow.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM document WHERE id = ? AND dossier_id = ?"), arguments: [id, dossierID])
        }
    }

    func documents(dossierID: String, includeSuperseded: Bool) async throws(StoreError) -> [DocumentRow] {
        try await read("list documents") { db in
            var request = DocumentRow.filter(Column("dossier_id") == dossierID)
            if !includeSuperseded { request = request.filter(Column("status") == "current") }
            return try request.order(Column("uploaded_at"), Column("rowid")).fetchAll(db)
        }
    }

    func currentDocumentCount(dossierID: String) async throws(StoreError) -> Int {
        try await read("count documents") { db in
            try DocumentRow.filter(Column("dossier_id") == dossierID && Column("status") == "current").fetchCount(db)
        }
    }

    /// The blob every document row names, packed (24 bytes each), for the reconciliation at
    /// start: a million rows take 24 MB and no string outlives its row. `unreadable` counts the
    /// rows whose id or blob version is not what this code writes (damage): the caller must
    /// then remove no blob, since one of them may be such a row's.
    func packedBlobNames() async throws(StoreError) -> (names: [PackedBlobName], unreadable: Int) {
        try await read("list document ids") { db in
            var names: [PackedBlobName] = []
            var unreadable = 0
            let rows = try Row.fetchCursor(db, sql: "SELECT id, blob_version FROM document")
            while let row = try rows.next() {
                // The id's bytes as SQLite holds them (no string made), the version as stored.
                // A damaged row must not stop the start; it is counted instead.
                guard case .int64(let version) = (row[1] as DatabaseValue).storage,
                    let name = try row.withUnsafeData(
                        atIndex: 0,
                        { id in
                            id?.withUnsafeBytes { PackedBlobName(id: $0, version: version) }
                        })
                else {
                    unreadable += 1
                    continue
                }
                names.append(name)
            }
            return (names, unreadable)
        }
    }

    /// The blobs of a dossier's documents, all versions.
    func blobNames(dossierID: String) async throws(StoreError) -> [BlobName] {
        try await read("list a dossier's documents") { db in
            try Row.fetchAll(db, sql: "SELECT id, blob_version FROM document WHERE dossier_id = ?", arguments: [dossierID])
                .compactMap(Self.blobName)
        }
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

    /// Every version of every document of a dossier, in the caller's transaction.
    static func documentRows(dossierID: String, _ db: Database) throws -> [DocumentRow] {
        try DocumentRow.filter(Column("dossier_id") == dossierID).fetchAll(db)
    }

    static func update(document row: DocumentRow, _ db: Database) throws { try row.update(db) }
}
