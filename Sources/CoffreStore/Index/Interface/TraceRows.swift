import Foundation

/// One trace entry. `sealed` holds the personal detail (who, which document, why), encrypted
/// under the dossier key; `detail` holds what may stay clear (an error code, a role) when there
/// is no dossier to encrypt under. `hash` chains the entry to the one before: a MAC, under the
/// vault's trace chain key (`TraceKeys`), of the previous hash and of every other column, so an
/// entry changed, inserted or removed breaks the chain from there on and cannot be mended
/// without the master key; the chain runs over ciphertext, so it still verifies after a purge
/// has destroyed the dossier key.
struct TraceEntryRow: Codable, Sendable {
    var seq: Int64
    var at: Int64
    var dossierId: String?
    var action: String
    var outcome: String
    var detail: String?
    var sealed: Data?
    var hash: Data
    /// The dossier's generation once the change this entry allowed was written (nil for an
    /// entry that changed nothing): the dossier's row can never be older than this.
    var generation: Int64? = nil

    enum CodingKeys: String, CodingKey {
        case seq, at, dossierId = "dossier_id", action, outcome, detail, sealed, hash, generation
    }

    /// The bytes the chain hashes after the previous hash: every column but `hash`, each
    /// length-prefixed so that no two entries encode alike (the generation, when there is
    /// one, comes last: an entry without it encodes as entries did before it existed).
    var chainedBytes: [UInt8] {
        var out = Array("coffre/trace/v1".utf8)
        out += withUnsafeBytes(of: seq.bigEndian, Array.init)
        out += withUnsafeBytes(of: at.bigEndian, Array.init)
        for field in [
            dossierId.map { Array($0.utf8) }, Array(action.utf8), Array(outcome.utf8), detail.map { Array($0.utf8) },
            sealed.map(Array.init),
        ] {
            if let field {
                out += withUnsafeBytes(of: UInt32(field.count).bigEndian, Array.init)
                out += field
            } else {
                out += [0xFF, 0xFF, 0xFF, 0xFF]
            }
        }
        if let generation { out += withUnsafeBytes(of: generation.bigEndian, Array.init) }
        return out
    }
}

/// A signed statement by the daemon that the chain reached `hash` at entry `seq`: removing or
/// rewriting entries up to there cannot go unnoticed even by someone who recomputes the hashes.
struct TraceCheckpointRow: Codable, Sendable {
    var seq: Int64
    var hash: Data
    var at: Int64
    var signature: Data

    /// The bytes signed.
    var signedBytes: [UInt8] {
        Array("coffre/trace-checkpoint/v1".utf8) + withUnsafeBytes(of: seq.bigEndian, Array.init) + Array(hash)
            + withUnsafeBytes(of: at.bigEndian, Array.init)
    }
}
