import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird

/// `/v1/patients/{ins}/dossier`: create and show a patient's dossier.
struct DossierRoutes: Sendable {
    let vault: Vault
    let gatekeeper: Gatekeeper

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.post("dossier", use: create)
        group.get("dossier", use: show)
    }

    @Sendable func create(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        try gatekeeper.authorize(context, .createDossier, dossierOwner: ins)
        // The body is optional today; when present it must be a JSON object.
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        if body.readableBytes > 0 {
            let bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? []
            do {
                _ = try JSONDecoder().decode(CreateDossierRequest.self, from: Data(bytes))
            } catch {
                throw Problem(.malformedJSON, detail: "the body, when present, must be a JSON object")
            }
        }
        let dossier = try await vault.createDossier(for: ins)
        return try json(view(dossier, documentCount: 0), status: .created)
    }

    @Sendable func show(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        try gatekeeper.authorize(context, .readDossier, dossierOwner: ins)
        let dossier = try await vault.dossier(for: ins)
        let count = try await vault.currentDocumentCount(in: dossier)
        return try json(view(dossier, documentCount: count))
    }

    private func view(_ dossier: DossierRecord, documentCount: Int) -> DossierView {
        DossierView(
            id: dossier.id, ins: dossier.ins.value, state: dossier.state,
            createdAt: rfc3339(milliseconds: dossier.createdAt), documentCount: documentCount)
    }
}
