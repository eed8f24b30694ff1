import CoffreDomain
import GRDB

/// The index's schema, as the migrations that build it (one version each, never edited once
/// released: a vault migrates forward from whatever version it was left at).
extension SQLiteIndex {
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
        migrator.registerMigration("v6: dossier revision") { db in
            // Counted by the schema, so that no write can forget it: every change to a
            // dossier's row (its settings and lifecycle, its state, its key generation) moves
            // it on. A key rotation's rewrap (master_version, wrapped_key) changes nothing an
            // operation decides on; nor does a new document (stores to one dossier do not
            // overtake one another).
            try db.alter(table: "dossier") { t in t.add(column: "revision", .integer).notNull().defaults(to: 0) }
            try db.execute(
                sql: """
                    CREATE TRIGGER dossier_revision_on_change AFTER UPDATE OF state, key_generation, sealed, purge_after ON dossier
                    BEGIN UPDATE dossier SET revision = revision + 1 WHERE id = NEW.id; END;
                    """)
        }
        migrator.registerMigration("v7: assertion replay guard") { db in
            // Single-use assertions, recorded with the operation each allowed, until they can
            // no longer verify: shared by every daemon that shares the index.
            // Keyed by time first: a use is recorded at the right edge of the table (its
            // expiry is a few minutes from now) and forgotten from the left one, so each commit
            // touches the page the one before it did. An assertion's expiry is part of it, so a
            // replay has the same key.
            try db.create(table: "assertion_seen", options: [.withoutRowID]) { t in
                t.column("forgettable_at", .integer).notNull()
                t.column("fingerprint", .blob).notNull().check { length($0) == 16 }
                t.primaryKey(["forgettable_at", "fingerprint"])
            }
        }
        migrator.registerMigration("v8: dossier seal, document versions, traced generations") { db in
            // Outside the revision trigger's columns: a new document reseals its dossier, and
            // stores to one dossier must not make each other decide again.
            try db.alter(table: "dossier") { t in
                t.add(column: "generation", .integer).notNull().defaults(to: 0)
                t.add(column: "document_count", .integer).notNull().defaults(to: 0)
                t.add(column: "document_digest", .blob)
                t.add(column: "seal", .blob)
            }
            try db.alter(table: "document") { t in t.add(column: "version", .integer).notNull().defaults(to: 0) }
            try db.alter(table: "trace_entry") { t in t.add(column: "generation", .integer) }
            // The last generation each dossier's trace records, found without reading its reads.
            try db.execute(
                sql: """
                    CREATE INDEX trace_generation_by_dossier ON trace_entry(dossier_id, generation)
                    WHERE generation IS NOT NULL
                    """)
            // A dossier's rows' versions, read without the rows (the seal's check).
            try db.create(index: "document_version_by_dossier", on: "document", columns: ["dossier_id", "id", "version"])
            // The dossiers still to seal, found at every start without reading the others: empty
            // once they are sealed.
            try db.execute(sql: "CREATE INDEX dossier_unsealed ON dossier(id) WHERE seal IS NULL")
        }
        return migrator
    }
}
