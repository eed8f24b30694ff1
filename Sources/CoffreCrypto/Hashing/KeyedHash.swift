import CSodium

/// Keyed BLAKE2b-256 (`crypto_generichash` with a key): how the index finds a dossier by INS
/// without storing the INS. Without the lookup key, the 32-byte digest reveals nothing, and the
/// small space of valid INS cannot be enumerated against it.
public enum KeyedHash {
    /// Digest length in bytes.
    public static let byteCount = 32

    /// The keyed hash of `message`, with a domain label so that the same key never yields the
    /// same digest for two purposes.
    public static func digest(_ message: [UInt8], domain: String, key: SymmetricKey) -> [UInt8] {
        Sodium.ensureInitialised()
        var input = Array(domain.utf8)
        input.append(0)
        input.append(contentsOf: message)
        var out = [UInt8](repeating: 0, count: byteCount)
        // The one-shot form keeps its state on libsodium's own (aligned) stack frame, avoiding the
        // 64-byte alignment pitfall of a Swift-allocated crypto_generichash_state.
        _ = crypto_generichash(&out, byteCount, input, UInt64(input.count), key.pointer, SymmetricKey.byteCount)
        secureZero(&input)
        return out
    }
}
