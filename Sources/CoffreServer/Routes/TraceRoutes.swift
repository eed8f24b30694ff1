import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird

/// `GET /v1/patients/{ins}/trace`: the dossier's trace, for the patient, their representatives, the
/// médecin traitant and administrators.
struct TraceRoutes: Sendable {
    let pipeline: OperationPipeline

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.get("trace", use: list)
    }

    @Sendable func list(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        var after: Int64 = 0
        if let text = request.uri.queryParameters.get("after") {
            guard let value = Int64(text), value >= 0 else { throw Problem(.malformedRequest, detail: "after is a sequence number") }
            after = value
        }
        let entries = try await pipeline.trace(of: ins, by: try context.person(), after: after, limit: TraceList.pageLimit)
        return try json(TraceList(entries: entries.map(TraceEntryView.init)))
    }
}

extension TraceEntryView {
    init(_ record: TraceRecord) {
        let detail = record.detail
        self.init(
            seq: record.seq, at: rfc3339(milliseconds: record.at), action: record.action, outcome: record.outcome,
            actor: detail.map {
                TraceActorView(
                    role: $0.actorRole, id: $0.actorID, profession: $0.profession, specialty: $0.specialty, organization: $0.organization)
            },
            mode: detail?.mode, reason: detail?.reason, documentId: detail?.documentID,
            replacesDocumentId: detail?.replacedDocumentID, rule: detail?.rule,
            matrixVersion: detail?.matrixVersion, errorCode: detail?.errorCode)
    }
}
