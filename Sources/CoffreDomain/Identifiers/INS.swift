/// A patient's national health identifier (INS): the 13-character NIR followed by its 2-digit key.
///
/// The NIR is digits only, except the two characters of the department of birth, which are
/// `2A` or `2B` for Corsica. The key is `97 − (NIR mod 97)`, where `2A` counts as `19` and `2B`
/// as `18`. The value is otherwise opaque: Coffre never interprets sex, date or place of birth.
///
/// An INS is personal data: it never appears in logs, error messages or on disk in plaintext.
public struct INS: Sendable, Hashable, CustomStringConvertible {
    /// The 15 characters, with `2A`/`2B` upper-cased.
    public let value: String

    /// Checks format and key; nil if either is wrong.
    public init?(_ text: String) {
        let upper = text.uppercased()
        let chars = Array(upper.utf8)
        guard chars.count == 15 else { return nil }
        var numeric = [UInt8]()
        for (index, c) in chars.enumerated() {
            if index == 6, c == UInt8(ascii: "A") || c == UInt8(ascii: "B"), chars[5] == UInt8(ascii: "2") {
                // 2A → 19, 2B → 18 for the key computation.
                numeric[5] = UInt8(ascii: "1")
                numeric.append(c == UInt8(ascii: "A") ? UInt8(ascii: "9") : UInt8(ascii: "8"))
                continue
            }
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            numeric.append(c)
        }
        let nir = numeric[0..<13].reduce(UInt64(0)) { $0 * 10 + UInt64($1 - UInt8(ascii: "0")) }
        let key = numeric[13...].reduce(UInt64(0)) { $0 * 10 + UInt64($1 - UInt8(ascii: "0")) }
        guard key == 97 - nir % 97 else { return nil }
        value = upper
    }

    /// Never the identifier itself, so that string interpolation into logs leaks nothing.
    public var description: String { "INS(redacted)" }

    /// The key that makes `nir` (13 characters) a valid INS; for tests and tooling.
    public static func key(forNIR nir: String) -> String? {
        let probe = nir + "00"
        guard probe.count == 15 else { return nil }
        for k in 1...97 {
            let candidate = nir + (k < 10 ? "0\(k)" : "\(k)")
            if INS(candidate) != nil { return String(candidate.suffix(2)) }
        }
        return nil
    }
}
