import CSodium

/// Authenticated encryption of small records (document titles, identifiers, author details) with
/// XChaCha20-Poly1305 IETF.
///
/// Format, version 1: `0x01 ‖ nonce (24) ‖ ciphertext ‖ tag (16)`. The associated data binds the
/// record to the row it belongs to, so sealed fields cannot be swapped between rows.
public enum SealedBox {
    /// Current format version.
    public static let version: UInt8 = 1

    /// Encrypts `plaintext` under `key`, bound to `associatedData`.
    public static func seal(_ plaintext: [UInt8], with key: SymmetricKey, associatedData: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialised()
        let nonceBytes = KeyWrap.nonceBytes
        var out = [UInt8](repeating: 0, count: 1 + nonceBytes + plaintext.count + KeyWrap.tagBytes)
        out.withUnsafeMutableBufferPointer { buffer in
            let base = buffer.baseAddress!
            base[0] = version
            randombytes_buf(base + 1, nonceBytes)
            var written: UInt64 = 0
            _ = crypto_aead_xchacha20poly1305_ietf_encrypt(
                base + 1 + nonceBytes, &written,
                plaintext, UInt64(plaintext.count),
                associatedData, UInt64(associatedData.count), nil,
                base + 1, key.pointer)
        }
        return out
    }

    /// Decrypts a sealed record.
    /// - Throws: `authenticationFailed` on any mismatch.
    public static func open(_ sealed: [UInt8], with key: SymmetricKey, associatedData: [UInt8]) throws(CryptoError) -> [UInt8] {
        Sodium.ensureInitialised()
        guard let first = sealed.first else { throw .malformed("empty sealed record") }
        guard first == version else { throw .unsupportedVersion(first) }
        let overhead = 1 + KeyWrap.nonceBytes + KeyWrap.tagBytes
        guard sealed.count >= overhead else { throw .malformed("sealed record too short") }
        var out = [UInt8](repeating: 0, count: sealed.count - overhead)
        let status = sealed.withUnsafeBufferPointer { input in
            let base = input.baseAddress!
            var written: UInt64 = 0
            return out.withUnsafeMutableBufferPointer { output in
                crypto_aead_xchacha20poly1305_ietf_decrypt(
                    output.baseAddress, &written, nil,
                    base + 1 + KeyWrap.nonceBytes, UInt64(sealed.count - 1 - KeyWrap.nonceBytes),
                    associatedData, UInt64(associatedData.count),
                    base + 1, key.pointer)
            }
        }
        guard status == 0 else { throw .authenticationFailed }
        return out
    }
}
