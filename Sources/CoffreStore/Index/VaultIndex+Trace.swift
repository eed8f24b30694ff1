import CoffreDomain
import Foundation
import GRDB

/// The trace's entries and checkpoints.
extension VaultIndex {
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
}
