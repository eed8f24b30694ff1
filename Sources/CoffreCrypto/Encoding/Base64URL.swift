import CSodium

/// Unpadded base64url (RFC 4648 §5), the encoding of actor assertions.
public enum Base64URL {
    private static let variant = Int32(sodium_base64_VARIANT_URLSAFE_NO_PADDING)

    /// Encodes bytes without padding.
    public static func encode(_ bytes: [UInt8]) -> String {
        Sodium.ensureInitialised()
        let length = sodium_base64_encoded_len(bytes.count, variant)
        var out = [CChar](repeating: 0, count: length)
        bytes.withUnsafeBufferPointer { input in
            _ = sodium_bin2base64(&out, length, input.baseAddress, input.count, variant)
        }
        return out.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    /// Decodes unpadded base64url; nil when the text is not exactly that.
    public static func decode(_ text: String) -> [UInt8]? {
        Sodium.ensureInitialised()
        let input = Array(text.utf8)
        var out = [UInt8](repeating: 0, count: input.count * 3 / 4 + 3)
        var written = 0
        var end: UnsafePointer<CChar>? = nil
        let status = input.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { chars in
                sodium_base642bin(&out, out.count, chars.baseAddress, chars.count, nil, &written, &end, variant)
            }
        }
        guard status == 0 else { return nil }
        // sodium_base642bin stops at the first invalid character; demand that it consumed everything.
        let consumed = input.withUnsafeBufferPointer { raw in
            raw.withMemoryRebound(to: CChar.self) { chars in
                end.map { chars.baseAddress!.distance(to: $0) } ?? 0
            }
        }
        guard consumed == input.count else { return nil }
        return Array(out.prefix(written))
    }
}
