import CoffreDomain
import Foundation
import GRDB
import Synchronization

/// The SQLite index: the source of truth for what the vault holds.
///
/// One struct in front of GRDB, in the manner of GRDB's `AppDatabase`: migrations run in the
/// initialiser, every write is one named method doing one transaction, and constraints live in
/// the schema. Every connection runs with `synchronous=FULL` (a committed wrapped key must
/// survive a power cut, or its document is lost with it) and `secure_delete=ON` (deleted rows
/// are overwritten, so a destroyed key does not linger in free pages).
struct VaultIndex: Sendable {
    let pool: DatabasePool
    /// Read-only connections for `lookUp` alone. GRDB's asynchronous reads give their
    /// connection back only once their continuation runs on the cooperative thread pool; a
    /// synchronous read waiting for one of those connections on a cooperative thread could wait
    /// for ever (the load drill saw every cooperative thread stuck so). Look-ups wait at most
    /// for one another, and each gives its connection back without suspending.
    let lookups: DatabasePool
    /// Writes queued or running on the writer connection (every write goes through this index).
    let writerLoad = WriterLoad()
    /// SQLite's default WAL size, in pages, at which a commit checkpoints.
    static let autocheckpointPages = 1000

    init(path: String) throws(StoreError) {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;")
        }
        configuration.label = "coffre.index"
        // A lock held a moment by another connection (a checkpoint, the recovery that just
        // ran) is waited for, not turned into a refusal (the crash drill saw one right after a
        // restart).
        configuration.busyMode = .timeout(5)
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            // GRDB turns WAL connections to synchronous=NORMAL after `prepareDatabase` runs;
            // the writer is the connection that commits, so set FULL on it again and check.
            let level = try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = \(Self.autocheckpointPages)")
                return try Int.fetchOne(db, sql: "PRAGMA synchronous")
            }
            guard level == 2 else {
                throw StoreError(.io, "the index refused synchronous=FULL (got \(level.map(String.init) ?? "nothing"))")
            }
            try Self.migrator.migrate(pool)
            var lookupConfiguration = Configuration()
            lookupConfiguration.readonly = true
            lookupConfiguration.label = "coffre.index.lookups"
            lookupConfiguration.busyMode = .timeout(5)
            lookupConfiguration.maximumReaderCount = 4
            lookups = try DatabasePool(path: path, configuration: lookupConfiguration)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot open the index database at \(path): \(error)")
        }
    }

    /// The writer connection's `synchronous` level (2 is FULL), `secure_delete` flag and
    /// automatic checkpoint size.
    func durabilitySettings() async throws(StoreError) -> (synchronous: Int, secureDelete: Int, autocheckpoint: Int) {
        try await writeWithoutTransaction("read the index settings") { db in
            (
                try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1, try Int.fetchOne(db, sql: "PRAGMA secure_delete") ?? -1,
                try Int.fetchOne(db, sql: "PRAGMA wal_autocheckpoint") ?? -1
            )
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: vault keys, dossiers, documents") { db in
            try db.create(table: "vault_key") { t in
                t.primaryKey("purpose", .text)
                t.column("master_version", .integer).notNull()
                t.column("wrapped_key", .blob).notNull()
            }
            try db.create(table: "dossier") { t in
                t.primaryKey("id", .text).check { length($0) == 32 }
                t.column("ins_hash", .blob).notNull().unique()
                t.column("state", .text).notNull()
                t.column("created_at", .integer).notNull()
                t.column("master_version", .integer).notNull()
                t.column("key_generation", .integer).notNull()
                t.column("wrapped_key", .blob).notNull()
                t.column("sealed", .blob).notNull()
            }
            try db.create(table: "document") { t in
                t.primaryKey("id", .text).check { length($0) == 32 }
                t.column("dossier_id", .text).notNull().references("dossier", onDelete: .cascade)
                t.column("class", .text).notNull()
                t.column("status", .text).notNull().check { ["current", "superseded", "deleted"].contains($0) }
                t.column("media_type", .text).notNull()
                t.column("size", .integer).notNull().check { $0 >= 0 }
                t.column("uploaded_at", .integer).notNull()
                t.column("replaces", .text).references("document")
                t.column("key_generation", .integer).notNull()
                t.column("wrapped_key", .blob).notNull()
                t.column("sealed", .blob).notNull()
            }
            try db.create(index: "document_by_dossier_time", on: "document", columns: ["dossier_id", "uploaded_at"])
        }
        migrator.registerMigration("v2: trace and notifications") { db in
            try db.create(table: "trace_entry") { t in
                t.primaryKey("seq", .integer)
                t.column("at", .integer).notNull()
                // No foreign key: the trace outlives the dossier (a purge keeps its record).
                t.column("dossier_id", .text)
                t.column("action", .text).notNull()
                t.column("outcome", .text).notNull()
                t.column("detail", .text)
                t.column("sealed", .blob)
                t.column("hash", .blob).notNull()
            }
            try db.create(index: "trace_by_dossier", on: "trace_entry", columns: ["dossier_id", "seq"])
            try db.create(table: "trace_checkpoint") { t in
                t.primaryKey("seq", .integer)
                t.column("hash", .blob).notNull()
                t.column("at", .integer).notNull()
                t.column("signature", .blob).notNull()
            }
            try db.create(table: "notification") { t in
                t.primaryKey("id", .text)
                t.column("dossier_id", .text).notNull().references("dossier", onDelete: .cascade)
                t.column("recipient", .text).notNull()
                t.column("created_at", .integer).notNull()
                t.column("acknowledged_at", .integer)
                t.column("sealed", .blob).notNull()
            }
            try db.create(index: "notification_by_dossier", on: "notification", columns: ["dossier_id", "created_at"])
        }
        migrator.registerMigration("v3: dossier lifecycle") { db in
            try db.alter(table: "dossier") { t in t.add(column: "purge_after", .integer) }
            try db.create(index: "dossier_by_purge_date", on: "dossier", columns: ["state", "purge_after"])
        }
        migrator.registerMigration("v4: master key versions, rotation, rekeyed dossiers") { db in
            try db.create(table: "master_key") { t in
                t.primaryKey("version", .integer).check { $0 > 0 }
                t.column("check_value", .blob).notNull()
                t.column("state", .text).notNull().check { ["active", "available", "retired"].contains($0) }
                t.column("added_at", .integer).notNull()
                t.column("retired_at", .integer)
            }
            // At most one rotation at a time: the row stays once finished, as its record.
            try db.create(table: "key_rotation") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("target_version", .integer).notNull()
                t.column("started_at", .integer).notNull()
                t.column("cursor", .integer).notNull()
                t.column("total", .integer).notNull()
                t.column("done", .integer).notNull()
                t.column("failed", .integer).notNull().defaults(to: 0)
                t.column("finished_at", .integer)
            }
            // Key usage per version is counted at every start: from this index, not the rows.
            // A purged dossier's key is destroyed with its version set to 0 (never a real one).
            try db.execute(sql: "UPDATE dossier SET master_version = 0 WHERE wrapped_key = x''")
            try db.create(index: "dossier_by_master_version", on: "dossier", columns: ["master_version"])
            // Earlier generations of a rekeyed dossier's key, kept wrapped so that its trace
            // entries (sealed under the key of their day, chained over the ciphertext) stay
            // readable; destroyed with the dossier key at purge.
            try db.create(table: "dossier_key_archive") { t in
                t.column("dossier_id", .text).notNull().references("dossier", onDelete: .cascade)
                t.column("key_generation", .integer).notNull()
                t.column("master_version", .integer).notNull()
                t.column("wrapped_key", .blob).notNull()
                t.primaryKey(["dossier_id", "key_generation"])
            }
            // A blob re-encrypted by a rekey is written under a new name (`<id>.<version>`), so
            // that the old one stays until the row naming the new one is committed.
            try db.alter(table: "document") { t in t.add(column: "blob_version", .integer).notNull().defaults(to: 0) }
        }
        migrator.registerMigration("v5: purge record") { db in
            // When a purge last destroyed a dossier key, and how many it destroyed. Backups made
            // before it keep copies of those keys, which the master key versions of their day
            // open: operators rotate past it and destroy those versions (`coffre admin keys`).
            try db.create(table: "purge_record") { t in
                t.primaryKey("id", .integer).check { $0 == 1 }
                t.column("last_purge_at", .integer).notNull()
                t.column("dossiers_purged", .integer).notNull()
            }
            // Purges made before this version are in the trace, whose action, outcome and time
            // are clear columns (a purge is traced before its key is destroyed: counted once).
            try db.execute(
                sql: """
                    INSERT INTO purge_record (id, last_purge_at, dossiers_purged)
                    SELECT 1, max(at), count(DISTINCT dossier_id) FROM trace_entry
                    WHERE action = 'dossier.purge' AND outcome = 'allowed' HAVING count(*) > 0
                    """)
        }
        return migrator
    }

    func write<T: Sendable>(_ what: String, _ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        writerLoad.enter()
        defer { writerLoad.leave() }
        do {
            return try await pool.write(body)
        } catch {
            throw Self.writeError(error, what)
        }
    }

    /// Like GRDB's `writeWithoutTransaction`, counted in `writerLoad`.
    func writeWithoutTransaction<T: Sendable>(
        _ what: String, _ body: @Sendable @escaping (Database) throws -> T
    ) async throws(StoreError) -> T {
        writerLoad.enter()
        defer { writerLoad.leave() }
        do {
            return try await pool.writeWithoutTransaction(body)
        } catch {
            throw Self.writeError(error, what)
        }
    }

    /// One transaction committed at `synchronous=NORMAL`: in the WAL (so safe from a crash of
    /// the daemon) when this returns, durable at the next sync of the WAL (`TraceSyncer`'s, or
    /// any FULL commit's). For trace entries that change nothing, never for a key or a document.
    func writeUnsynced<T: Sendable>(_ what: String, _ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        try await writeWithoutTransaction(what) { db in try Self.unsyncedTransaction(db, what, autocheckpoint: true, body) }
    }

    /// `writeUnsynced` on the calling thread, if no write is queued or running; nil otherwise.
    ///
    /// A read's trace entry is one small unsynced commit, tens of microseconds of work; sent to
    /// GRDB's writer thread and back, it costs two thread wake-ups, which on this kind of
    /// virtual machine cost more than the work. With nothing queued, GRDB's writer queue runs
    /// the block on the calling thread (`DispatchQueue.sync` on an idle queue), and nothing in
    /// it waits for the disk: the commit writes the WAL without syncing it, and SQLite's
    /// automatic checkpoint (which syncs) is off for this transaction (`TraceSyncer` asks for
    /// a checkpoint once the WAL grows). A write sent between the check and the block is
    /// waited for: rare, and as long as that one write.
    func writeUnsyncedIfIdle<T>(_ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T? {
        guard writerLoad.enterIfIdle() else { return nil }
        defer { writerLoad.leave() }
        do {
            return try withoutActuallyEscaping(body) { body in
                try pool.writeWithoutTransaction { db in try Self.unsyncedTransaction(db, what, autocheckpoint: false, body) }
            }
        } catch {
            throw Self.writeError(error, what)
        }
    }

    private static func unsyncedTransaction<T>(
        _ db: Database, _ what: String, autocheckpoint: Bool, _ body: (Database) throws -> T
    ) throws -> T {
        try db.execute(sql: autocheckpoint ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0")
        var result: Result<T, any Error> = .failure(StoreError(.io, "cannot \(what): nothing ran"))
        do {
            try db.inTransaction(.immediate) {
                result = .success(try body(db))
                return .commit
            }
        } catch {
            result = .failure(error)
        }
        // Back to FULL before the writer commits anything else. Should this fail, the error
        // goes up although the entries committed: the trace writer's chain then no longer
        // matches the index and it refuses every access (fails closed).
        try db.execute(
            sql: autocheckpoint
                ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = \(autocheckpointPages)")
        return try result.get()
    }

    /// Copies what it can of the WAL into the database file, without waiting for readers
    /// (asked for by `TraceSyncer` when unsynced commits, which skip SQLite's automatic
    /// checkpoint, have grown the WAL).
    func checkpointPassive() async throws(StoreError) {
        _ = try await writeWithoutTransaction("checkpoint the index") { db in try db.checkpoint(.passive) }
    }

    private static func writeError(_ error: any Error, _ what: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_FULL {
            return StoreError(.noSpace, "the disk is full: cannot \(what)")
        }
        return StoreError(.io, "cannot \(what): \(error.localizedDescription)")
    }

    /// A point look-up by key, run on the calling thread: a WAL reader never waits for the
    /// writer, and a one-row read by primary key or unique index takes microseconds, less
    /// than the two thread hops an asynchronous read costs (which profiles showed as a fifth
    /// of a small request's CPU). Long reads (lists, scans) go through `read`.
    func lookUp<T>(_ what: String, _ body: (Database) throws -> T) throws(StoreError) -> T {
        do {
            return try lookups.read(body)
        } catch {
            throw StoreError(.io, "cannot \(what): \(error.localizedDescription)")
        }
    }

    func read<T: Sendable>(_ what: String, _ body: @Sendable @escaping (Database) throws -> T) async throws(StoreError) -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw StoreError(.io, "cannot \(what): \(error.localizedDescription)")
        }
    }

    func vaultKey(purpose: String) async throws(StoreError) -> VaultKeyRow? {
        try await read("read a vault key") { db in try VaultKeyRow.fetchOne(db, key: purpose) }
    }

    /// Inserts the vault key unless one exists, and returns the one that is stored (so that two
    /// first starts racing each other agree).
    func insertVaultKeyIfAbsent(_ row: VaultKeyRow) async throws(StoreError) -> VaultKeyRow {
        try await write("store a vault key") { db in
            if let existing = try VaultKeyRow.fetchOne(db, key: row.purpose) { return existing }
            try row.insert(db)
            return row
        }
    }

    func insertDossier(_ row: DossierRow) async throws(StoreError) {
        try await write("create a dossier") { db in
            if try DossierRow.filter(Column("ins_hash") == row.insHash).fetchCount(db) > 0 {
                throw StoreError(.dossierExists, "this patient already has a dossier")
            }
            try row.insert(db)
        }
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

    /// Re-reads every version of the document `id` belongs to (the versions it replaced and
    /// those that replaced it) and replaces each with `transform`'s result, in one transaction.
    /// - Parameter keyGeneration: the dossier key generation `transform` seals with.
    func updateDocumentChain(
        id: String, dossierID: String, keyGeneration: Int64,
        _ transform: @Sendable @escaping (_ target: DocumentRow, _ row: DocumentRow) throws -> DocumentRow
    ) async throws(StoreError) -> DocumentRow {
        try await write("update a document's versions") { db in
            try Self.requireLiveDossier(dossierID, keyGeneration: keyGeneration, db)
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

    func dossier(insHash: Data) throws(StoreError) -> DossierRow? {
        try lookUp("read a dossier") { db in
            try DossierRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM dossier WHERE ins_hash = ?"), arguments: [insHash])
        }
    }

    static func insertDocument(_ row: DocumentRow, _ db: Database) throws {
        try requireLiveDossier(row.dossierId, keyGeneration: row.keyGeneration, db)
        try row.insert(db)
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

    // MARK: Verification

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

    // MARK: Retention and purge

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

    // MARK: Trace

    /// The last entry and the last checkpoint, to resume the chain at start.
    func traceTail() async throws(StoreError) -> (last: TraceEntryRow?, checkpoint: TraceCheckpointRow?) {
        try await read("read the trace") { db in
            (
                try TraceEntryRow.order(Column("seq").desc).fetchOne(db),
                try TraceCheckpointRow.order(Column("seq").desc).fetchOne(db)
            )
        }
    }

    /// Appends trace entries (and a checkpoint) in one transaction: one fsync for the batch.
    func appendTrace(_ entries: [TraceEntryRow], checkpoint: TraceCheckpointRow?) async throws(StoreError) {
        _ = try await appendTrace(entries, checkpoint: checkpoint, changes: [])
    }

    /// Appends trace entries and, in the same transaction, the change each one allows (if
    /// any), each change in a savepoint of its own: one that fails is rolled back alone and its
    /// error returned at its index, while its entry (the decision) stays in the trace.
    /// `synced: false` (entries that change nothing, and no change) leaves the WAL unsynced.
    func appendTrace(
        _ entries: [TraceEntryRow], checkpoint: TraceCheckpointRow?, changes: [(@Sendable (Database) throws -> Void)?],
        synced: Bool = true
    ) async throws(StoreError) -> [Int: any Error] {
        let append: @Sendable (Database) throws -> [Int: any Error] = { db in
            for entry in entries { try entry.insert(db) }
            try checkpoint?.insert(db)
            var failures: [Int: any Error] = [:]
            for (index, change) in changes.enumerated() {
                guard let change else { continue }
                do {
                    try db.inSavepoint {
                        try change(db)
                        return .commit
                    }
                } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR {
                    throw error  // the transaction itself is failing: nothing commits
                } catch {
                    failures[index] = error
                }
            }
            return failures
        }
        guard synced || changes.contains(where: { $0 != nil }) else {
            return try await writeUnsynced("write the trace", append)
        }
        return try await write("write the trace", append)
    }

    /// Appends trace entries that change nothing (and a checkpoint) unsynced, on the calling
    /// thread, if the writer is idle (`writeUnsyncedIfIdle`); false if it is not.
    func appendTraceUnsyncedIfIdle(_ entries: [TraceEntryRow], checkpoint: TraceCheckpointRow?) throws(StoreError) -> Bool {
        let done: Void? = try writeUnsyncedIfIdle("write the trace") { db -> Void in
            for entry in entries { try entry.insert(db) }
            try checkpoint?.insert(db)
        }
        return done != nil
    }

    /// The trace entries of one dossier after `seq`, oldest first.
    func traceEntries(dossierID: String, after seq: Int64, limit: Int) async throws(StoreError) -> [TraceEntryRow] {
        try await read("read the trace") { db in
            try TraceEntryRow.filter(Column("dossier_id") == dossierID && Column("seq") > seq).order(Column("seq")).limit(limit).fetchAll(
                db)
        }
    }

    /// Entries from `seq` on, in pages, for verification.
    func traceEntries(from seq: Int64, limit: Int) async throws(StoreError) -> [TraceEntryRow] {
        try await read("read the trace") { db in
            try TraceEntryRow.filter(Column("seq") >= seq).order(Column("seq")).limit(limit).fetchAll(db)
        }
    }

    /// The seq of the last checkpoint, nil when there is none.
    func lastTraceCheckpointSeq() async throws(StoreError) -> Int64? {
        try await read("read the trace") { db in try Int64.fetchOne(db, sql: "SELECT max(seq) FROM trace_checkpoint") }
    }

    /// Checkpoints after `seq` (from the first when nil) and up to `last`, in pages, for verification.
    func traceCheckpoints(after seq: Int64?, through last: Int64, limit: Int) async throws(StoreError) -> [TraceCheckpointRow] {
        try await read("read the trace") { db in
            var request = TraceCheckpointRow.filter(Column("seq") <= last)
            if let seq { request = request.filter(Column("seq") > seq) }
            return try request.order(Column("seq")).limit(limit).fetchAll(db)
        }
    }

    // MARK: Notifications

    /// Adds a notification; one with the same id already there is left as it is (so that a
    /// notice computed again is not sent twice).
    func insertNotification(_ row: NotificationRow) async throws(StoreError) {
        try await write("store a notification") { db in try Self.insertNotification(row, db) }
    }

    static func insertNotification(_ row: NotificationRow, _ db: Database) throws {
        try row.insert(db, onConflict: .ignore)
    }

    func notifications(dossierID: String, recipient: String, includeAcknowledged: Bool) async throws(StoreError) -> [NotificationRow] {
        try await read("read notifications") { db in
            var request = NotificationRow.filter(Column("dossier_id") == dossierID && Column("recipient") == recipient)
            if !includeAcknowledged { request = request.filter(Column("acknowledged_at") == nil) }
            return try request.order(Column("created_at"), Column("rowid")).fetchAll(db)
        }
    }

    /// Acknowledges `ids` (or every pending one when nil); returns how many changed.
    func acknowledgeNotifications(dossierID: String, recipient: String, ids: [String]?, at time: Int64) async throws(StoreError) -> Int {
        try await write("acknowledge notifications") { db in
            var request = NotificationRow.filter(
                Column("dossier_id") == dossierID && Column("recipient") == recipient && Column("acknowledged_at") == nil)
            if let ids { request = request.filter(ids.contains(Column("id"))) }
            return try request.updateAll(db, Column("acknowledged_at").set(to: time))
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
}

/// How many writes are queued or running on the index's writer connection.
final class WriterLoad: Sendable {
    private let count = Atomic<Int>(0)

    func enter() { count.add(1, ordering: .acquiringAndReleasing) }
    func leave() { count.subtract(1, ordering: .acquiringAndReleasing) }

    /// Enters if nothing else is queued or running.
    func enterIfIdle() -> Bool {
        count.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
    }
}
