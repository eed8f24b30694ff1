/// An organisation's FINESS number: 9 characters, the last a Luhn check digit over the first
/// eight (the department part may be `2A`/`2B` for Corsica, counted as `20`).
public struct FINESS: Sendable, Hashable, CustomStringConvertible {
    /// The 9 characters.
    public let value: String

    /// Checks length and the Luhn sum; nil if either is wrong.
    public init?(_ text: String) {
        let chars = Array(text.uppercased().utf8)
        guard chars.count == 9 else { return nil }
        var digits: [Int] = []
        for (index, c) in chars.enumerated() {
            if index == 1, chars[0] == UInt8(ascii: "2"), c == UInt8(ascii: "A") || c == UInt8(ascii: "B") {
                digits.append(0)
                continue
            }
            guard (48...57).contains(c) else { return nil }
            digits.append(Int(c) - 48)
        }
        guard RPPS.luhnSum(digits) % 10 == 0 else { return nil }
        value = text.uppercased()
    }

    public var description: String { value }
}
