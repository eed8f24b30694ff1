/// Where a document version stands in its history.
public enum DocumentStatus: String, Sendable, Codable, CaseIterable {
    /// The latest version.
    case current
    /// Replaced by a newer version; kept in the history.
    case superseded
    /// Logically deleted by its author; kept until the dossier is purged.
    case deleted
}

/// A calendar date of care, `YYYY-MM-DD`, checked.
public struct CareDate: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The date as written.
    public let value: String

    /// Accepts `YYYY-MM-DD` with a real month and day; nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
            let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]),
            parts.allSatisfy({ $0.utf8.allSatisfy { (48...57).contains($0) } }),
            (1...12).contains(month), year >= 1900
        else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard (1...days).contains(day) else { return nil }
        value = text
    }

    public var description: String { value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let date = CareDate(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a YYYY-MM-DD date"))
        }
        self = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}
