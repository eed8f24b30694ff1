import CoffreDomain
import CoffreCrypto

/// The daemon's own Ed25519 key for trace checkpoints, derived from a 32-byte seed that the
/// vault keeps wrapped by the master key (so it rotates with it and never sits on disk in clear).
struct TraceSigner: Sendable {
    let key: Ed25519SigningKey

    init(seed: SymmetricKey, arena: SecureArena) throws(StoreError) {
        var bytes = seed.withUnsafeBytes { Array($0) }
        defer { secureZero(&bytes) }
        do {
            key = try Ed25519SigningKey(seed: bytes, in: arena)
        } catch {
            throw StoreError(.keys, "cannot derive the trace signing key: \(error)")
        }
    }

    var publicKey: Ed25519PublicKey { key.publicKey }
}
