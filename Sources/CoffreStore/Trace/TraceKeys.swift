import CoffreCrypto
import CoffreDomain
import Foundation

/// The keys that make the trace the daemon's own: both derived from a 32-byte seed the vault
/// keeps wrapped by the master key, so they rotate with it and never sit on disk in clear.
///
/// - The **chain key** links each entry to the one before with a keyed BLAKE2b MAC. Someone who
///   can write the index but holds no master key can change an entry, but cannot make the
///   entries after it follow from it again: the change stays visible.
/// - The **signing key** (Ed25519) signs checkpoints. Its public half is written at the head of
///   the anchor file and in the journal, outside the index, so that a verifier can check
///   checkpoints without any secret.
struct TraceKeys: Sendable {
    let signingKey: Ed25519SigningKey
    let chainKey: SymmetricKey

    init(seed: SymmetricKey, arena: SecureArena) throws(StoreError) {
        var bytes = seed.withUnsafeBytes { Array($0) }
        defer { secureZero(&bytes) }
        do {
            signingKey = try Ed25519SigningKey(seed: bytes, in: arena)
            chainKey = try seed.derived(for: "trace-chain/v1", in: arena)
        } catch {
            throw StoreError(.keys, "cannot derive the trace keys: \(error)")
        }
    }

    var publicKey: Ed25519PublicKey { signingKey.publicKey }

    /// The hash of `row`, chained to `previous` under the chain key.
    func link(_ row: TraceEntryRow, to previous: Data) -> Data {
        Data(KeyedHash.digest(Array(previous) + row.chainedBytes, domain: "coffre/trace-chain/v1", key: chainKey))
    }

    /// A signed checkpoint: the chain reached `hash` at entry `seq`.
    func checkpoint(seq: Int64, hash: Data, at: Int64) -> TraceCheckpointRow {
        var checkpoint = TraceCheckpointRow(seq: seq, hash: hash, at: at, signature: Data())
        checkpoint.signature = Data(signingKey.sign(checkpoint.signedBytes))
        return checkpoint
    }

    /// Whether `checkpoint` was signed by this vault.
    func signed(_ checkpoint: TraceCheckpointRow) -> Bool {
        publicKey.isValidSignature(Array(checkpoint.signature), for: checkpoint.signedBytes)
    }
}
