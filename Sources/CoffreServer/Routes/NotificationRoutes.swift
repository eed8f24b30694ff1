import CoffreAPI
import CoffreDomain
import CoffreStore
import Hummingbird

/// `/v1/patients/{ins}/notifications`: the outbox, read and acknowledged by the patient (and
/// the representative), and by the médecin traitant for the notices meant for them.
struct NotificationRoutes: Sendable {
    let pipeline: OperationPipeline

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.get("notifications", use: list)
        group.post("notifications/ack", use: acknowledge)
    }

    @Sendable func list(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let records = try await pipeline.notifications(
            of: try context.patientINS(), by: try context.person(), includeAcknowledged: request.uri.queryParameters.get("all") == "true")
        return try json(NotificationList(notifications: records.map(NotificationView.init)))
    }

    /// Acknowledging is a change: its entry is durable before the answer.
    @Sendable func acknowledge(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(AcknowledgeRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        guard (body.all == true) != (body.ids != nil) else {
            throw Problem(.malformedJSON, detail: "send either {\"ids\": [...]} or {\"all\": true}")
        }
        let outcome = try await pipeline.perform(
            .acknowledgeNotifications(ids: body.all == true ? nil : body.ids), on: ins, by: try context.person())
        return try json(AcknowledgeResult(acknowledged: outcome.acknowledged))
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
