import Foundation
import GRDB

/// A dossier row. Nothing in it is personal data in plaintext: the INS is only present as a
/// keyed hash (for look-up) and inside `sealed`, encrypted under the dossier key.
struct DossierRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "dossier"
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

    enum CodingKeys: String, CodingKey {
        case id, insHash = "ins_hash", state, createdAt = "created_at", masterVersion = "master_version"
        case keyGeneration = "key_generation", wrappedKey = "wrapped_key", sealed, purgeAfter = "purge_after"
    }
}

/// A document version row. Title, type code, date of care, author, content hash and the
/// confidentiality flags are in `sealed`, encrypted under the dossier key; what stays clear is
/// what the index must filter on, and it is authenticated as the sealed record's associated data.
struct DocumentRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "document"
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

    enum CodingKeys: String, CodingKey {
        case id, dossierId = "dossier_id", documentClass = "class", status, mediaType = "media_type", size
        case uploadedAt = "uploaded_at", replaces, keyGeneration = "key_generation", wrappedKey = "wrapped_key"
        case sealed
    }

    /// The clear columns, bound into the sealed record's associated data: changing any of them
    /// in the database makes the record fail authentication instead of changing what the access
    /// rules see.
    var associatedData: [UInt8] {
        let fields = [id, dossierId, documentClass, status, mediaType, String(size), String(uploadedAt), replaces ?? "-"]
        return Array(("coffre/document/v1\u{0}" + fields.joined(separator: "\u{0}")).utf8)
    }
}

/// A key of the vault itself (the INS look-up key), wrapped by a master key.
struct VaultKeyRow: Codable, FetchableRecord, PersistableRecord, Sendable {
    static let databaseTableName = "vault_key"
    var purpose: String
    var masterVersion: Int64
    var wrappedKey: Data

    enum CodingKeys: String, CodingKey {
        case purpose, masterVersion = "master_version", wrappedKey = "wrapped_key"
    }
}
