/// HTTP header names of the API.
///
/// A document upload is the raw content as the body; its metadata travels in these headers so
/// that the body can stream straight to disk. Free text (the title) is percent-encoded UTF-8.
public enum CoffreHeader {
    /// `Authorization: Coffre-Assertion <token>` carries a signed actor assertion.
    public static let authorizationScheme = "Coffre-Assertion"
    /// Patient-facing class of an uploaded document (required).
    public static let documentClass = "Coffre-Class"
    /// Title of an uploaded document, percent-encoded UTF-8.
    public static let title = "Coffre-Title"
    /// LOINC or TRE_A05 type code.
    public static let typeCode = "Coffre-Type-Code"
    /// Date of care, `YYYY-MM-DD`.
    public static let careDate = "Coffre-Care-Date"
    /// Comma-separated confidentiality flags: `patient`, `representatives`.
    public static let hiddenFrom = "Coffre-Hidden-From"
    /// On a content response: the SHA-256 of the whole content, for the client to check.
    public static let contentSHA256 = "Coffre-Content-SHA256"
    /// On a content response: the document id.
    public static let documentID = "Coffre-Document-Id"
}
