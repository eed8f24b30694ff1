import Foundation

/// The checks on an upload's metadata as it arrives in `Coffre-*` headers: client text, so pure
/// functions here (fuzzed by `coffre-fuzz metadata`) and the HTTP plumbing in the server.
public enum UploadFields {
    public static let maxTitleBytes = 512
    public static let maxTypeCodeBytes = 64
    public static let maxMediaTypeBytes = 255

    /// A percent-encoded UTF-8 title, decoded; nil if it does not decode, is too long, or holds
    /// a control character.
    public static func title(percentEncoded text: String) -> String? {
        guard let decoded = text.removingPercentEncoding, decoded.utf8.count <= maxTitleBytes,
            !decoded.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return nil }
        return decoded
    }

    /// A LOINC or TRE_A05 type code: letters, digits, `-`, `.`, `_`.
    public static func isValidTypeCode(_ code: String) -> Bool {
        (1...maxTypeCodeBytes).contains(code.utf8.count)
            && code.utf8.allSatisfy {
                (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 46 || $0 == 95
            }
    }

    /// `Coffre-Hidden-From`: a comma-separated list of `patient` and `representatives` (empty
    /// items ignored); nil for anything else.
    public static func hiddenFrom(_ flags: String) -> (patient: Bool, representatives: Bool)? {
        var hidden = (patient: false, representatives: false)
        for flag in flags.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !flag.isEmpty {
            switch flag {
            case "patient": hidden.patient = true
            case "representatives": hidden.representatives = true
            default: return nil
            }
        }
        return hidden
    }

    /// A media type such as `application/pdf`, as far as Coffre cares: short, with a slash.
    public static func isValidMediaType(_ text: String) -> Bool {
        text.utf8.count <= maxMediaTypeBytes && text.contains("/")
    }
}
