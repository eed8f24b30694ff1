public import CoffreDomain

/// A dossier as the API shows it.
public struct DossierView: Codable, Sendable, Equatable {
    /// The dossier's random identifier.
    public var id: DossierID
    /// The patient's INS. Only ever sent to a caller allowed to read the dossier.
    public var ins: String
    /// Lifecycle state (`active` at this stage).
    public var state: String
    /// When the dossier was created (RFC 3339, UTC).
    public var createdAt: String
    /// Number of current documents.
    public var documentCount: Int

    public init(id: DossierID, ins: String, state: String, createdAt: String, documentCount: Int) {
        self.id = id
        self.ins = ins
        self.state = state
        self.createdAt = createdAt
        self.documentCount = documentCount
    }
}
