import CSodium

/// Incremental SHA-256 (libsodium), the content hash recorded for every document.
///
/// SHA-256 rather than BLAKE2b so that an operator can check a fetched document with `sha256sum`.
public final class SHA256Hasher {
    private let state: UnsafeMutablePointer<crypto_hash_sha256_state>

    /// Starts a new hash.
    public init() {
        Sodium.ensureInitialised()
        state = .allocate(capacity: 1)
        crypto_hash_sha256_init(state)
    }

    /// Feeds bytes.
    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        crypto_hash_sha256_update(state, base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
    }

    /// The 32-byte digest.
    public func finalize() -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        crypto_hash_sha256_final(state, &digest)
        return digest
    }

    /// SHA-256 of a whole buffer.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        let hasher = SHA256Hasher()
        bytes.withUnsafeBytes { hasher.update($0) }
        return hasher.finalize()
    }

    deinit {
        sodium_memzero(state, MemoryLayout<crypto_hash_sha256_state>.size)
        state.deallocate()
    }
}
