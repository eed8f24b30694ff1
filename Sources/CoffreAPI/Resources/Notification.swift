/// The recipient's notifications.
public struct NotificationList: Codable, Sendable {
    public var notifications: [NotificationView]
    public init(notifications: [NotificationView]) { self.notifications = notifications }
}

/// One notice in the outbox.
public struct NotificationView: Codable, Sendable, Equatable {
    public var id: String
    /// `patient` or `medecin_traitant`.
    public var recipient: String
    /// `professional_access`, `document_added`, `document_replaced`, `emergency_access`,
    /// `hidden_document_waiting`.
    public var kind: String
    /// The text to deliver (French, as the patient reads it).
    public var message: String
    public var createdAt: String
    public var acknowledgedAt: String?
    public var actor: TraceActorView?
    public var documentId: String?

    public init(
        id: String, recipient: String, kind: String, message: String, createdAt: String, acknowledgedAt: String?,
        actor: TraceActorView?, documentId: String?
    ) {
        self.id = id
        self.recipient = recipient
        self.kind = kind
        self.message = message
        self.createdAt = createdAt
        self.acknowledgedAt = acknowledgedAt
        self.actor = actor
        self.documentId = documentId
    }
}

/// Body of `POST /v1/patients/{ins}/notifications/ack`: the ids to acknowledge, or `all`.
public struct AcknowledgeRequest: Codable, Sendable {
    public var ids: [String]?
    public var all: Bool?
    public init(ids: [String]? = nil, all: Bool? = nil) {
        self.ids = ids
        self.all = all
    }
}

/// How many notifications were acknowledged.
public struct AcknowledgeResult: Codable, Sendable, Equatable {
    public var acknowledged: Int
    public init(acknowledged: Int) { self.acknowledged = acknowledged }
}
