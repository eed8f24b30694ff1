import Foundation

/// A dossier row. Nothing in it is personal data in plaintext: the INS is only present as a
/// keyed hash (for look-up) and inside `sealed`, encrypted under the dossier key.
struct DossierRow: Codable, Sendable {
    var id: String
    var insHash: Data
    var state: String
    var createdAt: Int64
    var masterVersion: Int64
    var keyGeneration: Int64
    var wrappedKey: Data
    var sealed: Data
    /// When a closed dossier becomes due for purge (denormalised from the sealed lifecycle so
    /// the retention job can find candidates; the sealed record decides).
    var purgeAfter: Int64?
    /// Goes up by one with every change to the dossier's row: settings, lifecycle, state, key
    /// generation (the engine counts it; a row written back does not set it). A change decided
    /// on revision n commits only if the dossier is still at n; otherwise it decides again.
    var revision: Int64 = 0
    /// Goes up with every commit that changes the dossier's row or any of its document rows
    /// (the vault counts it, in `seal`); the trace entry of each change records the generation
    /// it left, so that a row put back from an older copy is older than the trace says.
    var generation: Int64 = 0
    /// How many document rows the dossier has, and the XOR of a keyed hash of each one's id
    /// and version (`DossierSeal`): a row put back, removed or added no longer adds up.
    var documentCount: Int64 = 0
    var documentDigest: Data?
    /// A MAC under the vault's seal key over the columns above, the clear columns the index
    /// filters on and the sealed record: none of them can be put back alone. Nil only in a row
    /// written before the seal existed, which the vault seals at its next start.
    var seal: Data?

    enum CodingKeys: String, CodingKey {
        case id, insHash = "ins_hash", state, createdAt = "created_at", masterVersion = "master_version"
        case keyGeneration = "key_generation", wrappedKey = "wrapped_key", sealed, purgeAfter = "purge_after", revision
        case generation, documentCount = "document_count", documentDigest = "document_digest", seal
    }
}

/// A document version row. Title, type code, date of care, author, content hash and the
/// confidentiality flags are in `sealed`, encrypted under the dossier key; what stays clear is
/// what the index must filter on, and it is authenticated as the sealed record's associated data.
struct DocumentRow: Codable, Sendable {
    var id: String
    var dossierId: String
    var documentClass: String
    var status: String
    var mediaType: String
    var size: Int64
    var uploadedAt: Int64
    var replaces: String?
    var keyGeneration: Int64
    var wrappedKey: Data
    var sealed: Data
    /// Which file holds the blob: 0 for `<id>`, n for `<id>.<n>` after n re-encryptions.
    var blobVersion: Int64 = 0
    /// 1 when written, and one more at every rewrite (a mask, a release, a deletion, a
    /// replacement, a rekey). Bound into the associated data and counted in the dossier's
    /// seal, so that an older copy of the row put back is told apart from the current one.
    /// 0 only in a row written before versions existed, which the vault seals again at its
    /// next start.
    var version: Int64 = 1

    enum CodingKeys: String, CodingKey {
        case id, dossierId = "dossier_id", documentClass = "class", status, mediaType = "media_type", size
        case uploadedAt = "uploaded_at", replaces, keyGeneration = "key_generation", wrappedKey = "wrapped_key"
        case sealed, blobVersion = "blob_version", version
    }

    /// The clear columns, bound into the sealed record's associated data: changing any of them
    /// in the database makes the record fail authentication instead of changing what the access
    /// rules see.
    var associatedData: [UInt8] {
        let fields = [id, dossierId, documentClass, status, mediaType, String(size), String(uploadedAt), replaces ?? "-"]
        // Rows of before versions (0) were sealed without one.
        guard version != 0 else { return Array(("coffre/document/v1\u{0}" + fields.joined(separator: "\u{0}")).utf8) }
        return Array(("coffre/document/v2\u{0}" + (fields + [String(version)]).joined(separator: "\u{0}")).utf8)
    }
}

/// A key of the vault itself (the INS look-up key), wrapped by a master key.
struct VaultKeyRow: Codable, Sendable {
    var purpose: String
    var masterVersion: Int64
    var wrappedKey: Data

    enum CodingKeys: String, CodingKey {
        case purpose, masterVersion = "master_version", wrappedKey = "wrapped_key"
    }
}

/// What the index knows of a master key version (never the key).
struct MasterKeyRow: Codable, Sendable {
    var version: Int64
    var checkValue: Data
    var state: String
    var addedAt: Int64
    var retiredAt: Int64?

    enum CodingKeys: String, CodingKey {
        case version, checkValue = "check_value", state, addedAt = "added_at", retiredAt = "retired_at"
    }
}

/// The rotation in progress (or the last one): dossier rows up to `cursor` (a rowid) are done.
struct KeyRotationRow: Codable, Sendable {
    var id: Int64 = 1
    var targetVersion: Int64
    var startedAt: Int64
    var cursor: Int64
    var total: Int64
    var done: Int64
    var failed: Int64 = 0
    var finishedAt: Int64?

    enum CodingKeys: String, CodingKey {
        case id, targetVersion = "target_version", startedAt = "started_at", cursor, total, done, failed, finishedAt = "finished_at"
    }
}

/// An earlier generation of a rekeyed dossier's key, wrapped by a master key.
struct ArchivedDossierKeyRow: Codable, Sendable {
    var dossierId: String
    var keyGeneration: Int64
    var masterVersion: Int64
    var wrappedKey: Data

    enum CodingKeys: String, CodingKey {
        case dossierId = "dossier_id", keyGeneration = "key_generation", masterVersion = "master_version", wrappedKey = "wrapped_key"
    }
}
