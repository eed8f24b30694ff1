import CSodium

/// Envelope encryption of one key under another (XChaCha20-Poly1305 IETF AEAD).
///
/// Format, version 1: `0x01 ‖ nonce (24) ‖ ciphertext (32) ‖ tag (16)`, 73 bytes. The associated
/// data names what the key is for (its purpose, owner identifiers and the wrapping key's
/// version), so a wrapped key copied to another row, dossier or version fails to unwrap.
public enum KeyWrap {
    /// Current format version.
    public static let version: UInt8 = 1
    static let nonceBytes = Int(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES)
    static let tagBytes = Int(crypto_aead_xchacha20poly1305_ietf_ABYTES)
    /// Length of a wrapped key in format version 1.
    public static let wrappedByteCount = 1 + nonceBytes + SymmetricKey.byteCount + tagBytes

    /// Encrypts `key` under `wrappingKey`, bound to `context`.
    public static func wrap(_ key: SymmetricKey, with wrappingKey: SymmetricKey, context: WrapContext) -> [UInt8] {
        Sodium.ensureInitialised()
        var out = [UInt8](repeating: 0, count: wrappedByteCount)
        let ad = context.associatedData
        out.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            base[0] = version
            NonceSource.fill(base + 1, count: nonceBytes)
            var written: UInt64 = 0
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                base + 1 + nonceBytes, &written,
                key.pointer, UInt64(SymmetricKey.byteCount),
                ad, UInt64(ad.count), nil,
                base + 1, wrappingKey.pointer)
        }
        return out
    }

    /// Decrypts a wrapped key straight into locked memory.
    /// - Throws: `authenticationFailed` when the key, context or bytes do not match.
    public static func unwrap(
        _ wrapped: [UInt8],
        with wrappingKey: SymmetricKey,
        context: WrapContext,
        in arena: SecureArena
    ) throws(CryptoError) -> SymmetricKey {
        Sodium.ensureInitialised()
        guard let first = wrapped.first else { throw .malformed("empty wrapped key") }
        guard first == version else { throw .unsupportedVersion(first) }
        guard wrapped.count == wrappedByteCount else { throw .malformed("wrapped key has the wrong length") }
        let ad = context.associatedData
        let key = try SymmetricKey.filling(in: arena) { output in
            wrapped.withUnsafeBufferPointer { input in
                let base = input.baseAddress!
                var written: UInt64 = 0
                return crypto_aead_xchacha20poly1305_ietf_decrypt(
                    output.baseAddress!.assumingMemoryBound(to: UInt8.self), &written, nil,
                    base + 1 + nonceBytes, UInt64(SymmetricKey.byteCount + tagBytes),
                    ad, UInt64(ad.count),
                    base + 1, wrappingKey.pointer) == 0
            }
        }
        guard let key else { throw .authenticationFailed }
        return key
    }
}

/// What a wrapped key is bound to. Each field is length-prefixed in the associated data so that
/// no two different contexts produce the same bytes.
public struct WrapContext: Sendable, Equatable {
    /// What the key is, e.g. `dossier-key`.
    public var purpose: String
    /// Identifiers the key belongs to, outermost first (dossier id, then document id).
    public var owners: [String]
    /// Version of the wrapping key (master key version, or dossier key generation).
    public var wrappingKeyVersion: UInt32

    public init(purpose: String, owners: [String], wrappingKeyVersion: UInt32) {
        self.purpose = purpose
        self.owners = owners
        self.wrappingKeyVersion = wrappingKeyVersion
    }

    var associatedData: [UInt8] {
        var out = Array("coffre/wrap/v1".utf8)
        for field in [purpose] + owners {
            let bytes = Array(field.utf8)
            out.append(contentsOf: withUnsafeBytes(of: UInt32(bytes.count).bigEndian, Array.init))
            out.append(contentsOf: bytes)
        }
        out.append(contentsOf: withUnsafeBytes(of: wrappingKeyVersion.bigEndian, Array.init))
        return out
    }
}
