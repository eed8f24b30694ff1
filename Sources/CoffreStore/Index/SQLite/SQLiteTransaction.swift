import CoffreDomain
import Foundation
import GRDB

/// A transaction (or a read's snapshot) of `SQLiteIndex`: the SQL behind `IndexReader` and
/// `IndexTransaction`, one file per concern. Wraps GRDB's `Database`, which it must not outlive.
struct SQLiteTransaction: IndexTransaction {
    let db: Database

    init(_ db: Database) { self.db = db }

    func inSavepoint<T>(_ body: () throws -> T) throws -> T {
        var result: T? = nil
        do {
            try db.inSavepoint {
                result = try body()
                return .commit
            }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_FULL || error.resultCode == .SQLITE_IOERR {
            throw TransactionFailed(error: SQLiteIndex.writeError(error, "write the index"))
        }
        guard let result else { throw StoreError(.io, "a savepoint ran nothing") }
        return result
    }
}

// The rows' tables. Columns are the rows' coding keys.
extension DossierRow: FetchableRecord, PersistableRecord {
    static let databaseTableName = "dossier"

    /// Every column but `revision`, which the schema's triggers count.
    func encode(to container: inout PersistenceContainer) throws {
        container["id"] = id
        container["ins_hash"] = insHash
        container["state"] = state
        container["created_at"] = createdAt
        container["master_version"] = masterVersion
        container["key_generation"] = keyGeneration
        container["wrapped_key"] = wrappedKey
        container["sealed"] = sealed
        container["purge_after"] = purgeAfter
        container["generation"] = generation
        container["document_count"] = documentCount
        container["document_digest"] = documentDigest
        container["seal"] = seal
    }
}
extension DocumentRow: FetchableRecord, PersistableRecord { static let databaseTableName = "document" }
extension VaultKeyRow: FetchableRecord, PersistableRecord { static let databaseTableName = "vault_key" }
extension MasterKeyRow: FetchableRecord, PersistableRecord { static let databaseTableName = "master_key" }
extension KeyRotationRow: FetchableRecord, PersistableRecord { static let databaseTableName = "key_rotation" }
extension ArchivedDossierKeyRow: FetchableRecord, PersistableRecord { static let databaseTableName = "dossier_key_archive" }
extension TraceEntryRow: FetchableRecord, PersistableRecord { static let databaseTableName = "trace_entry" }
extension TraceCheckpointRow: FetchableRecord, PersistableRecord { static let databaseTableName = "trace_checkpoint" }
extension NotificationRow: FetchableRecord, PersistableRecord { static let databaseTableName = "notification" }
