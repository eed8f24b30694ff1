#if canImport(Glibc)
    import Glibc
#endif
import CoffreDomain
import Foundation
import GRDB
import Logging
import Synchronization

/// The index in one SQLite database, through GRDB: the engine of a single host.
///
/// In the manner of GRDB's `AppDatabase`: migrations run in the initialiser, and constraints
/// live in the schema. Every connection runs with `synchronous=FULL` (a committed wrapped key
/// must survive a power cut, or its document is lost with it) and `secure_delete=ON` (deleted
/// rows are overwritten, so a destroyed key does not linger in free pages). Transactions begin
/// `IMMEDIATE`: a write holds SQLite's write lock from its first statement, so whatever it
/// reads stays as it read it until it commits, whoever else writes the file.
struct SQLiteIndex: VaultIndex {
    let pool: DatabasePool
    /// Read-only connections for `lookUp` alone. GRDB's asynchronous reads give their
    /// connection back only once their continuation runs on the cooperative thread pool; a
    /// synchronous read waiting for one of those connections on a cooperative thread could wait
    /// for ever (the load drill saw every cooperative thread stuck so). Look-ups wait at most
    /// for one another, and each gives its connection back without suspending.
    let lookups: DatabasePool
    /// Writes queued or running on the writer connection (every write goes through this index).
    let writerLoad = WriterLoad()
    /// Makes `.batched` commits durable, a few milliseconds after them.
    let syncer: TraceSyncer
    /// SQLite's default WAL size, in pages, at which a commit checkpoints.
    static let autocheckpointPages = 1000

    /// Opens (and migrates) the index at `path`.
    /// - Parameter syncInterval: how long a `.batched` commit may wait for the sync of the WAL
    ///   (zero: every commit syncs).
    init(path: String, syncInterval: Duration = .milliseconds(10), logger: Logger = Logger(label: "coffre.index")) throws(StoreError) {
        let pool: DatabasePool
        let lookups: DatabasePool
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
        self.pool = pool
        self.lookups = lookups
        let writerLoad = self.writerLoad
        syncer = TraceSyncer(
            walPath: path + "-wal", interval: syncInterval, logger: logger,
            checkpoint: {
                do {
                    try await Self.checkpoint(.passive, pool: pool, load: writerLoad)
                } catch {
                    logger.warning("the index could not be checkpointed", metadata: ["error": "\(error)"])
                }
            }
        ) {
            // After a failed sync of the WAL: copy it into the database file, synced there.
            do {
                try await Self.checkpointTruncate(pool: pool, load: writerLoad)
                logger.notice("the index was checkpointed after a failed trace sync")
            } catch {
                logger.error("the index could not be checkpointed after a failed trace sync", metadata: ["error": "\(error)"])
            }
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

    func write<T: Sendable>(
        _ what: String, durability: TraceDurability, _ body: @Sendable @escaping (any IndexTransaction) throws -> T
    ) async throws(StoreError) -> T {
        if durability == .batched && syncer.batches {
            let result = try await writeUnsynced(what) { db in try body(SQLiteTransaction(db)) }
            syncer.entriesWritten()
            return result
        }
        writerLoad.enter()
        defer { writerLoad.leave() }
        do {
            return try await pool.write { db in try body(SQLiteTransaction(db)) }
        } catch {
            throw Self.writeError(error, what)
        }
    }

    func writeBatchedIfIdle<T>(_ what: String, _ body: (any IndexTransaction) throws -> T) throws(StoreError) -> T? {
        guard syncer.batches else { return nil }
        let result = try writeUnsyncedIfIdle(what) { db in try body(SQLiteTransaction(db)) }
        if result != nil { syncer.entriesWritten(checkpointSkipped: true) }
        return result
    }

    func read<T: Sendable>(_ what: String, _ body: @Sendable @escaping (any IndexReader) throws -> T) async throws(StoreError) -> T {
        do {
            return try await pool.read { db in try body(SQLiteTransaction(db)) }
        } catch {
            throw Self.readError(error, what)
        }
    }

    /// A point look-up by key, run on the calling thread: a WAL reader never waits for the
    /// writer, and a one-row read by primary key or unique index takes microseconds, less
    /// than the two thread hops an asynchronous read costs (which profiles showed as a fifth
    /// of a small request's CPU). Long reads (lists, scans) go through `read`.
    func lookUp<T>(_ what: String, _ body: (any IndexReader) throws -> T) async throws(StoreError) -> T {
        try lookUpOnThisThread(what, body)
    }

    /// GRDB's synchronous read (an `async` context would pick its asynchronous one).
    private func lookUpOnThisThread<T>(_ what: String, _ body: (any IndexReader) throws -> T) throws(StoreError) -> T {
        do {
            return try lookups.read { db in try body(SQLiteTransaction(db)) }
        } catch {
            throw Self.readError(error, what)
        }
    }

    func sync() async {
        await syncer.syncNow()
    }

    func durable() async {
        await syncer.durable()
    }

    /// Moves every WAL page into the database and truncates the WAL, so that rows deleted with
    /// `secure_delete` leave no old copy behind in the log.
    func eraseDeletedRows() async throws(StoreError) {
        try await Self.checkpointTruncate(pool: pool, load: writerLoad)
    }

    func diskSpace() -> (free: Int64, total: Int64)? {
        var info = statvfs()
        guard statvfs(pool.path, &info) == 0 else { return nil }
        let unit = Int64(info.f_frsize)
        return (Int64(info.f_bavail) * unit, Int64(info.f_blocks) * unit)
    }

    /// SQLite's own checks: page structure (`quick_check`) and foreign keys.
    func integrityProblems() async throws(StoreError) -> [String] {
        do {
            return try await pool.read { db in
                var problems = try String.fetchAll(db, sql: "PRAGMA quick_check").filter { $0 != "ok" }.map { "index: \($0)" }
                let orphans = try Row.fetchAll(db, sql: "PRAGMA foreign_key_check")
                if !orphans.isEmpty { problems.append("index: \(orphans.count) row(s) violate a foreign key") }
                return problems
            }
        } catch {
            throw Self.readError(error, "check the index")
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

    /// Copies what it can of the WAL into the database file (`.passive`: without waiting for
    /// readers; asked for by `TraceSyncer` when unsynced commits, which skip SQLite's automatic
    /// checkpoint, have grown the WAL).
    static func checkpoint(_ mode: Database.CheckpointMode, pool: DatabasePool, load: WriterLoad) async throws {
        load.enter()
        defer { load.leave() }
        _ = try await pool.writeWithoutTransaction { db in try db.checkpoint(mode) }
    }

    /// A truncating checkpoint. A reader in the middle of a transaction makes it busy: retry
    /// for a while rather than leave a destroyed key's old page in the WAL.
    static func checkpointTruncate(pool: DatabasePool, load: WriterLoad) async throws(StoreError) {
        var lastError: (any Error)? = nil
        for _ in 0..<100 {
            do {
                try await checkpoint(.truncate, pool: pool, load: load)
                return
            } catch {
                lastError = error
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        throw StoreError(.io, "cannot checkpoint the index (the WAL still holds old pages): \(lastError.map { "\($0)" } ?? "busy")")
    }

    static func writeError(_ error: any Error, _ what: String) -> StoreError {
        if let error = error as? StoreError { return error }
        if let failed = error as? TransactionFailed { return failed.error }
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_FULL {
            return StoreError(.noSpace, "the disk is full: cannot \(what)")
        }
        return StoreError(.io, "cannot \(what): \(error.localizedDescription)")
    }

    private static func readError(_ error: any Error, _ what: String) -> StoreError {
        if let error = error as? StoreError { return error }
        return StoreError(.io, "cannot \(what): \(error.localizedDescription)")
    }
}
