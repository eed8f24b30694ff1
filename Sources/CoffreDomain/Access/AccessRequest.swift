/// An action a caller wants to perform on a dossier.
public enum DossierAction: String, Sendable, CaseIterable {
    case createDossier = "dossier.create"
    case readDossier = "dossier.read"
    case listDocuments = "document.list"
    case readDocumentMetadata = "document.metadata"
    case readDocumentContent = "document.content"
    case addDocument = "document.add"
}

/// The outcome of an access decision, with the rule that made it (recorded in the trace).
public struct AccessDecision: Sendable, Equatable {
    /// Whether the action may proceed.
    public var isAllowed: Bool
    /// A stable name for the rule that decided, e.g. `patient.own-dossier`.
    public var rule: String

    public static func allow(_ rule: String) -> AccessDecision { .init(isAllowed: true, rule: rule) }
    public static func deny(_ rule: String) -> AccessDecision { .init(isAllowed: false, rule: rule) }
}
