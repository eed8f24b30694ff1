/// Identifiers Coffre generates: 128 random bits as 32 lowercase hexadecimal characters.
///
/// Because the format is exactly that, a valid identifier is always a safe single path component
/// (no `/`, `.`, NUL or anything else), and parsing one is the only check a path needs.
public protocol OpaqueIdentifier: Sendable, Hashable, CustomStringConvertible, Codable {
    /// The 32 hex characters.
    var value: String { get }
    /// Wraps an already-validated value.
    init(unchecked value: String)
}

extension OpaqueIdentifier {
    /// Parses an identifier; nil unless it is exactly 32 lowercase hex characters.
    public init?(_ text: String) {
        guard Self.isWellFormed(text) else { return nil }
        self.init(unchecked: text)
    }

    /// Whether `text` is exactly 32 lowercase hexadecimal characters.
    public static func isWellFormed(_ text: String) -> Bool {
        let utf8 = text.utf8
        return utf8.count == 32 && utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    public var description: String { value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard Self.isWellFormed(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an identifier"))
        }
        self.init(unchecked: text)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }
}

/// A dossier's identifier (random; unrelated to the patient's INS).
public struct DossierID: OpaqueIdentifier {
    public let value: String
    public init(unchecked value: String) { self.value = value }
}

/// A document version's identifier.
public struct DocumentID: OpaqueIdentifier {
    public let value: String
    public init(unchecked value: String) { self.value = value }
}
