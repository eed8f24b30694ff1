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

extension SymmetricKey {
    /// A subkey for one purpose, derived from this key straight into locked memory (keyed
    /// BLAKE2b-256 of the purpose): the subkey reveals nothing of this key, and two purposes
    /// never share a subkey.
    public func derived(for purpose: String, in arena: SecureArena) throws(CryptoError) -> SymmetricKey {
        Sodium.ensureInitialised()
        var label = Array(("coffre/derived-key/" + purpose).utf8)
        defer { secureZero(&label) }
        let derived = try SymmetricKey.filling(in: arena) { slot in
            crypto_generichash(
                slot.baseAddress!.assumingMemoryBound(to: UInt8.self), SymmetricKey.byteCount, label, UInt64(label.count), pointer,
                SymmetricKey.byteCount) == 0
        }
        guard let derived else { throw .malformed("libsodium could not derive a key") }
        return derived
    }
}
