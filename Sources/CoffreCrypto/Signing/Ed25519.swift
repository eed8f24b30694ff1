import CSodium

/// An Ed25519 public key: an issuer of actor assertions, or the daemon's own trace signer.
public struct Ed25519PublicKey: Sendable, Hashable {
    /// Length in bytes.
    public static let byteCount = Int(crypto_sign_PUBLICKEYBYTES)
    /// The raw key.
    public let bytes: [UInt8]

    /// Wraps raw key bytes, checking their length.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == Self.byteCount else {
            throw .invalidKeyLength(expected: Self.byteCount, actual: bytes.count)
        }
        self.bytes = bytes
    }

    /// Whether `signature` is this key's signature of `message`.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        Sodium.ensureInitialised()
        guard signature.count == Int(crypto_sign_BYTES) else { return false }
        return crypto_sign_verify_detached(signature, message, UInt64(message.count), bytes) == 0
    }
}

/// An Ed25519 signing key held in locked memory (libsodium's 64-byte secret key form).
public final class Ed25519SigningKey: Sendable {
    /// Length of the seed a signing key is made from.
    public static let seedByteCount = Int(crypto_sign_SEEDBYTES)

    private let slot: SecureSlot
    /// The matching public key.
    public let publicKey: Ed25519PublicKey

    /// Derives the key pair from a 32-byte seed (the form stored in key files).
    public init(seed: [UInt8], in arena: SecureArena) throws(CryptoError) {
        Sodium.ensureInitialised()
        guard seed.count == Self.seedByteCount else {
            throw .invalidKeyLength(expected: Self.seedByteCount, actual: seed.count)
        }
        slot = try arena.allocate()
        var publicBytes = [UInt8](repeating: 0, count: Ed25519PublicKey.byteCount)
        _ = crypto_sign_seed_keypair(&publicBytes, slot.pointer.assumingMemoryBound(to: UInt8.self), seed)
        publicKey = try Ed25519PublicKey(bytes: publicBytes)
    }

    /// A new random seed.
    public static func generateSeed() -> [UInt8] { SecureRandom.bytes(seedByteCount) }

    /// Signs `message` (detached signature, 64 bytes).
    public func sign(_ message: [UInt8]) -> [UInt8] {
        var signature = [UInt8](repeating: 0, count: Int(crypto_sign_BYTES))
        _ = crypto_sign_detached(
            &signature, nil, message, UInt64(message.count),
            slot.pointer.assumingMemoryBound(to: UInt8.self))
        return signature
    }
}
