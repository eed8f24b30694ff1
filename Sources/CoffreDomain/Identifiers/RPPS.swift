/// A health professional's RPPS number: 11 digits whose last is a Luhn check digit.
public struct RPPS: Sendable, Hashable, CustomStringConvertible {
    /// The 11 digits.
    public let value: String

    /// Checks length, digits and the Luhn sum; nil if any is wrong.
    public init?(_ text: String) {
        let digits = Array(text.utf8)
        guard digits.count == 11, digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        guard Self.luhnSum(digits.map { Int($0 - 48) }) % 10 == 0 else { return nil }
        value = text
    }

    /// The RPPS itself: a professional identifier, public in the national directory.
    public var description: String { value }

    static func luhnSum(_ digits: [Int]) -> Int {
        var sum = 0
        for (offset, digit) in digits.reversed().enumerated() {
            if offset % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum
    }

    /// Completes 10 digits with their Luhn check digit; for tests and tooling.
    public static func withCheckDigit(_ first10: String) -> RPPS? {
        (0...9).lazy.compactMap { RPPS(first10 + String($0)) }.first
    }
}
