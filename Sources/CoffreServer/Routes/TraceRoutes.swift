import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird

/// `GET /v1/patients/{ins}/trace`: the dossier's trace, for the patient, their representatives, the
/// médecin traitant and administrators.
struct TraceRoutes: Sendable {
    let vault: Vault
    let gatekeeper: Gatekeeper

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
        let dossier = try await vault.dossier(for: ins)
        let actor = try await gatekeeper.authorize(context, .readTrace, owner: ins, dossier: dossier)
        var entries = try await vault.traceEntries(for: dossier, after: after, limit: TraceList.pageLimit)
        // The trace must not reveal a document its reader may not see (one hidden from the
        // patient pending an announcement, or from representatives): entries naming one are left
        // out for them. The médecin traitant sees everything.
        if actor.role != .professional {
            let hidden = Set(
                try await vault.documents(in: ins, includeSuperseded: true)
                    .filter { !gatekeeper.canSee(actor, $0, in: dossier) && $0.status != .deleted }.map(\.id.value))
            if !hidden.isEmpty {
                entries = entries.filter { entry in entry.detail?.documentID.map { !hidden.contains($0) } ?? true }
            }
        }
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
            mode: detail?.mode, reason: detail?.reason, documentId: detail?.documentID, rule: detail?.rule,
            matrixVersion: detail?.matrixVersion, errorCode: detail?.errorCode)
    }
}
