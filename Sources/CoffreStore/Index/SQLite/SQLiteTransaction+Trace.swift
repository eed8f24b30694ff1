import CoffreDomain
import Foundation
import GRDB

/// The trace's entries and checkpoints.
extension SQLiteTransaction {
    func traceTail() throws -> (last: TraceEntryRow?, checkpoint: TraceCheckpointRow?) {
        (
            try TraceEntryRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM trace_entry ORDER BY seq DESC LIMIT 1")),
            try TraceCheckpointRow.fetchOne(db.cachedStatement(sql: "SELECT * FROM trace_checkpoint ORDER BY seq DESC LIMIT 1"))
        )
    }

    func append(traceEntries: [TraceEntryRow], checkpoints: [TraceCheckpointRow]) throws {
        for entry in traceEntries { try entry.insert(db) }
        for checkpoint in checkpoints { try checkpoint.insert(db) }
    }

    func traceEntries(dossierID: String, after seq: Int64, limit: Int) throws -> [TraceEntryRow] {
        try TraceEntryRow.filter(Column("dossier_id") == dossierID && Column("seq") > seq).order(Column("seq")).limit(limit).fetchAll(db)
    }

    /// Through the partial index `trace_generation_by_dossier`: one step, however many reads
    /// the dossier's trace holds.
    func tracedGeneration(dossierID: String) throws -> Int64? {
        try Int64.fetchOne(
            db.cachedStatement(sql: "SELECT max(generation) FROM trace_entry WHERE dossier_id = ? AND generation IS NOT NULL"),
            arguments: [dossierID])
    }

    func traceEntries(from seq: Int64, limit: Int) throws -> [TraceEntryRow] {
        try TraceEntryRow.filter(Column("seq") >= seq).order(Column("seq")).limit(limit).fetchAll(db)
    }

    func lastTraceCheckpointSeq() throws -> Int64? {
        try Int64.fetchOne(db, sql: "SELECT max(seq) FROM trace_checkpoint")
    }

    func traceCheckpoints(after seq: Int64?, through last: Int64, limit: Int) throws -> [TraceCheckpointRow] {
        var request = TraceCheckpointRow.filter(Column("seq") <= last)
        if let seq { request = request.filter(Column("seq") > seq) }
        return try request.order(Column("seq")).limit(limit).fetchAll(db)
    }
}
