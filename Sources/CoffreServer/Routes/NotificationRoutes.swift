import CoffreAPI
import CoffreDomain
import CoffreStore
import Hummingbird

/// `/v1/patients/{ins}/notifications`: the outbox, read and acknowledged by the patient (and
/// the representative), and by the médecin traitant for the notices meant for them.
struct NotificationRoutes: Sendable {
    let vault: Vault
    let gatekeeper: Gatekeeper

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.get("notifications", use: list)
        group.post("notifications/ack", use: acknowledge)
    }

    @Sendable func list(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let dossier = try await vault.dossier(for: ins)
        let actor = try await gatekeeper.authorize(context, .readNotifications, owner: ins, dossier: dossier)
        let recipient = Self.recipient(actor)
        if recipient == .patient {
            try await gatekeeper.notifier.noticeWaitingDocuments(in: dossier, now: gatekeeper.clock.now())
        }
        let includeAcknowledged = request.uri.queryParameters.get("all") == "true"
        let records = try await vault.notifications(for: dossier, recipient: recipient, includeAcknowledged: includeAcknowledged)
        return try json(NotificationList(notifications: records.map(NotificationView.init)))
    }

    @Sendable func acknowledge(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(AcknowledgeRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        guard (body.all == true) != (body.ids != nil) else {
            throw Problem(.malformedJSON, detail: "send either {\"ids\": [...]} or {\"all\": true}")
        }
        let dossier = try await vault.dossier(for: ins)
        let actor = try await gatekeeper.authorize(context, .readNotifications, owner: ins, dossier: dossier)
        let count = try await vault.acknowledgeNotifications(
            for: dossier, recipient: Self.recipient(actor), ids: body.all == true ? nil : body.ids)
        return try json(AcknowledgeResult(acknowledged: count))
    }

    /// The patient and representatives read the patient's notices; the médecin traitant (and
    /// administrators, who share the rights) read theirs.
    static func recipient(_ actor: Actor) -> NotificationRecipient {
        if case .professional = actor.subject { return .medecinTraitant }
        return .patient
    }
}

extension NotificationView {
    init(_ record: NotificationRecord) {
        self.init(
            id: record.id, recipient: record.recipient.rawValue, kind: record.kind.rawValue, message: record.message,
            createdAt: rfc3339(milliseconds: record.createdAt), acknowledgedAt: record.acknowledgedAt.map { rfc3339(milliseconds: $0) },
            actor: record.actor.map {
                TraceActorView(
                    role: $0.actorRole, id: $0.actorID, profession: $0.profession, specialty: $0.specialty, organization: $0.organization)
            },
            documentId: record.documentID)
    }
}
