import CoffreDomain
import Foundation

/// The index: the source of truth for what the vault holds (dossiers, documents, the keys that
/// wrap them, the trace, notices, the assertion replay guard, the rotation's cursor), and the
/// transactions that change it. Blobs live in a `BlobStore`; the index names them.
///
/// An engine implements this protocol, `IndexReader` and `IndexTransaction`, and passes the
/// conformance suite written against them (`Tests/CoffreStoreTests/IndexConformance.swift`).
/// Today that is SQLite (`SQLiteIndex`). The vault never assumes it is the only writer:
/// - a transaction is serialisable, whoever else writes (another task, another daemon sharing
///   the engine): two that touch the same rows run one after the other;
/// - whatever a decision depends on is read again inside the transaction that acts on it (the
///   trace's tail, a dossier's `revision`), never carried over from memory.
protocol VaultIndex: Sendable {
    /// Runs `body` in one transaction and commits it, durable as `durability` says when this
    /// returns. Nothing of it is written if `body` throws.
    func write<T: Sendable>(
        _ what: String, durability: TraceDurability, _ body: @Sendable @escaping (any IndexTransaction) throws -> T
    ) async throws(StoreError) -> T

    /// A `.batched` write run on the calling thread, if the engine can do that at once without
    /// waiting for another writer; nil (and nothing run) otherwise. Engines without such a path
    /// always answer nil.
    func writeBatchedIfIdle<T>(_ what: String, _ body: (any IndexTransaction) throws -> T) throws(StoreError) -> T?

    /// Runs `body` on a consistent snapshot. For lists and scans.
    func read<T: Sendable>(_ what: String, _ body: @Sendable @escaping (any IndexReader) throws -> T) async throws(StoreError) -> T

    /// A point read by key (one row or a few), which the engine may answer on the calling thread.
    func lookUp<T>(_ what: String, _ body: (any IndexReader) throws -> T) async throws(StoreError) -> T

    /// Makes every `.batched` commit so far durable (at a clean stop).
    func sync() async
    /// Returns once every commit so far is durable, waiting for the engine's own next sync
    /// rather than asking for one (the trace's anchors).
    func durable() async

    /// Leaves no copy of deleted rows in the engine's logs or free space (after a purge, so that
    /// a destroyed dossier key lingers nowhere).
    func eraseDeletedRows() async throws(StoreError)

    /// The engine's own consistency checks, in words; empty when it finds nothing.
    func integrityProblems() async throws(StoreError) -> [String]

    /// The space left, and the whole, of the disk the index writes to; nil when the engine
    /// cannot say (a database server keeps its own).
    func diskSpace() -> (free: Int64, total: Int64)?
}

extension VaultIndex {
    /// A write durable before it returns.
    func write<T: Sendable>(_ what: String, _ body: @Sendable @escaping (any IndexTransaction) throws -> T) async throws(StoreError) -> T {
        try await write(what, durability: .beforeReturning, body)
    }
}

/// When a committed write must be on disk.
public enum TraceDurability: Sendable {
    /// Durable before the write returns. For decisions that allow a change, and anything else
    /// whose record must survive a power cut the moment it is acted on.
    case beforeReturning
    /// Committed before the write returns (a crash of the daemon loses nothing), made durable
    /// with the other commits of the next few milliseconds. For the trace entries of reads and
    /// refusals, which change nothing: a power cut may take the last few milliseconds of them
    /// off the end of the trace, never a document, a key or a write's entry, and the chain
    /// still verifies (commits survive in order, so what survives is a prefix).
    case batched
}

/// A failure of the transaction itself (the disk is full, the engine is unreachable), raised
/// inside a savepoint: the whole transaction must fail, not only the savepoint's part.
struct TransactionFailed: Error {
    let error: StoreError
}

/// What a transaction (or a snapshot) can read.
protocol IndexReader {
    // MARK: Dossiers
    func dossier(id: String) throws -> DossierRow?
    func dossier(insHash: Data) throws -> DossierRow?
    /// Dossiers not being purged, after `cursor` in id order.
    func dossiers(after cursor: String, limit: Int) throws -> [DossierRow]
    /// Closed dossiers due for purge by `now`, and every purge left unfinished, after `cursor`.
    func retentionCandidates(dueBy now: Int64, after cursor: String, limit: Int) throws -> [DossierRow]
    func retentionCandidateCount(dueBy now: Int64) throws -> Int
    /// A dossier's generation (what its trace entries record); nil if it has no row.
    func dossierGeneration(id: String) throws -> Int64?
    /// Dossiers not yet sealed (rows written before seals existed), up to `limit`.
    func unsealedDossierIDs(limit: Int) throws -> [String]

    // MARK: Documents
    func document(id: String, dossierID: String) throws -> DocumentRow?
    /// A dossier's documents, oldest upload first; only current versions unless asked.
    func documents(dossierID: String, includeSuperseded: Bool) throws -> [DocumentRow]
    func documents(ids: [String], dossierID: String) throws -> [DocumentRow]
    /// The ids of every version of the document `id` belongs to (those it replaced, those that
    /// replaced it, and itself).
    func versionChain(of id: String) throws -> [String]
    func documentIDs(dossierID: String) throws -> [String]
    /// The id and version of each of a dossier's document rows, without the rows: what its
    /// seal counts. A damaged value is read as it is (`DocumentVersion.damaged`), never trusted.
    func documentVersions(dossierID: String) throws -> [DocumentVersion]
    /// The blobs a dossier's documents name, all versions.
    func blobNames(dossierID: String) throws -> [BlobName]
    /// Every blob a document row names, packed, and how many rows name none readably.
    func packedBlobNames() throws -> (names: [PackedBlobName], unreadable: Int)
    func documentCountOutsidePurges() throws -> Int
    func randomDocumentIDs(limit: Int) throws -> [String]

    // MARK: Keys
    func vaultKey(purpose: String) throws -> VaultKeyRow?
    func masterKeys() throws -> [MasterKeyRow]
    func masterKey(version: UInt32) throws -> MasterKeyRow?
    func keyUsage() throws -> KeyUsage
    func purgeRecord() throws -> (lastAt: Int64, dossiers: Int)?
    func rotation() throws -> KeyRotationRow?
    /// Up to `limit` dossier keys after the rotation's cursor, in the engine's stable order.
    func dossierKeys(after cursor: Int64, limit: Int) throws -> [WrappedDossierKey]
    /// Keys of live dossiers wrapped by another master key version than `version`.
    func dossierKeyCount(notUnder version: UInt32) throws -> Int
    func vaultKeys(notUnder version: UInt32) throws -> [VaultKeyRow]
    func archivedKeys(notUnder version: UInt32) throws -> [ArchivedDossierKeyRow]
    /// A dossier's archived keys, newest generation first.
    func archivedKeys(dossierID: String) throws -> [ArchivedDossierKeyRow]

    // MARK: Trace
    /// The last entry and the last checkpoint. Read inside a write, the tail is the writer's
    /// to extend: no other writer extends it before the transaction ends.
    func traceTail() throws -> (last: TraceEntryRow?, checkpoint: TraceCheckpointRow?)
    func traceEntries(dossierID: String, after seq: Int64, limit: Int) throws -> [TraceEntryRow]
    /// The highest generation the dossier's trace entries record (nil if none records one).
    func tracedGeneration(dossierID: String) throws -> Int64?
    func traceEntries(from seq: Int64, limit: Int) throws -> [TraceEntryRow]
    func lastTraceCheckpointSeq() throws -> Int64?
    func traceCheckpoints(after seq: Int64?, through last: Int64, limit: Int) throws -> [TraceCheckpointRow]

    // MARK: Notices
    func notifications(dossierID: String, recipient: String, includeAcknowledged: Bool) throws -> [NotificationRow]
    func notifications(dossierID: String) throws -> [NotificationRow]
}

/// What a write transaction can change, beside what it can read. Constraints hold whatever the
/// engine: one dossier per patient, a document only in a live dossier at its key generation,
/// a notice stored once.
protocol IndexTransaction: IndexReader {
    /// Runs `body` in a savepoint: if it throws, its writes are undone and the rest of the
    /// transaction goes on. A failure of the transaction itself is thrown as `TransactionFailed`.
    func inSavepoint<T>(_ body: () throws -> T) throws -> T

    // MARK: Dossiers
    /// Inserts a dossier; throws `dossierExists` if the patient has one.
    func insert(dossier row: DossierRow) throws
    /// Replaces a dossier's row; its `revision` goes up by one (the row's own is ignored).
    func update(dossier row: DossierRow) throws
    /// Writes a dossier's generation, document count and digest, and seal, and nothing else:
    /// its `revision` stays (a new document does not make concurrent decisions stale).
    func update(dossierSeal row: DossierRow) throws
    /// Step one of a purge: destroys the dossier key and the sealed record in place, if the
    /// sealed record is still `sealed`. Returns whether it did.
    func destroyDossierKey(id: String, ifSealedIs sealed: Data, at now: Int64) throws -> Bool
    /// Last step of a purge: the dossier's rows go.
    func deleteDossier(id: String) throws

    // MARK: Documents
    /// Inserts a document (`requireLiveDossier` first: the engine checks only its own constraints).
    func insert(document row: DocumentRow) throws
    /// Replaces a document's row.
    func update(document row: DocumentRow) throws

    // MARK: Keys
    func insert(vaultKey row: VaultKeyRow) throws
    func update(vaultKey row: VaultKeyRow) throws
    func insert(masterKey row: MasterKeyRow) throws
    func update(masterKey row: MasterKeyRow) throws
    /// Makes `version` the active one; any other active version becomes available.
    func activate(version: UInt32) throws
    func save(rotation: KeyRotationRow) throws
    func updateDossierKey(at position: Int64, masterVersion: UInt32, wrappedKey: Data) throws
    func insert(archivedKey row: ArchivedDossierKeyRow) throws
    func update(archivedKey row: ArchivedDossierKeyRow) throws

    // MARK: Trace
    func append(traceEntries: [TraceEntryRow], checkpoints: [TraceCheckpointRow]) throws

    // MARK: Notices
    /// Adds a notice; one with the same id already there is left as it is.
    func insert(notification row: NotificationRow) throws
    func update(notification row: NotificationRow) throws
    /// Acknowledges `ids` (or every pending one when nil); returns how many changed.
    func acknowledgeNotifications(dossierID: String, recipient: String, ids: [String]?, at time: Int64) throws -> Int

    // MARK: The replay guard
    /// Records an assertion's use; false (and nothing recorded) if it is recorded already.
    func admit(assertion fingerprint: Data, forgettableAt: Int64) throws -> Bool
    /// Forgets the assertions that can no longer verify by `now` (seconds since the epoch).
    func forgetAssertions(through now: Int64) throws
}

/// A document row's id and version as a dossier's seal counts them.
struct DocumentVersion: Sendable, Equatable {
    var id: String
    var version: Int64

    /// What a row whose id or version is not of its type (damage) reads as: it matches no seal.
    static let damaged = DocumentVersion(id: "", version: -1)
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
