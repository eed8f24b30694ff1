import CoffreAPI
import CoffreDomain
import CoffreStore
import Hummingbird

/// Operator and retention-job routes: legal holds (`/v1/admin/patients/{ins}/hold`), a death
/// recorded by the site (`/v1/admin/patients/{ins}/death`), and the
/// retention run (`/v1/retention/...`), in batches so that a run over a large vault shows
/// progress and never holds one long request.
struct RetentionRoutes: Sendable {
    let vault: Vault

    static let maximumBatch = 2_000

    func addHolds(to group: RouterGroup<CoffreRequestContext>) {
        group.post("patients/:ins/hold") { request, context in
            let ins = try context.patientINS()
            let body = try decodeJSON(HoldRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
            // Traced before it is done (fail closed), like every access.
            try await traceOperator("dossier.hold", dossier: try await vault.dossier(for: ins), context, vault: vault)
            let updated = try await vault.changeLifecycle(for: ins, .hold(reason: body.reason))
            return try await dossierView(updated)
        }
        // The death of a patient with no médecin traitant to record it (the site's records
        // office learns of it): the dossier is closed and kept for the legal retention.
        group.post("patients/:ins/death") { _, context in
            let ins = try context.patientINS()
            try await traceOperator(
                DossierAction.closeDossierOnDeath.rawValue, dossier: try await vault.dossier(for: ins), context, vault: vault)
            let updated = try await vault.changeLifecycle(for: ins, .close(reason: .death, deletionRequested: false))
            return try await dossierView(updated)
        }
        group.delete("patients/:ins/hold") { _, context in
            let ins = try context.patientINS()
            try await traceOperator("dossier.release-hold", dossier: try await vault.dossier(for: ins), context, vault: vault)
            let updated = try await vault.changeLifecycle(for: ins, .releaseHold)
            return try await dossierView(updated)
        }
    }

    /// An operator's answer: the dossier as the change left it.
    private func dossierView(_ dossier: DossierRecord) async throws -> Response {
        try json(DossierView(dossier, documentCount: try await vault.currentDocumentCount(in: dossier), retention: vault.retentionRules))
    }

    func addRetention(to group: RouterGroup<CoffreRequestContext>) {
        group.get("due") { _, _ in try json(RetentionDueView(due: try await vault.retentionDue())) }
        group.post("run") { request, context in
            let body = try decodeJSON(RetentionRunRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
            let after = body.after ?? ""
            guard after.isEmpty || DossierID(after) != nil else {
                throw Problem(.invalidIdentifier, detail: "after is a dossier id (32 lowercase hex) or empty")
            }
            let limit = min(max(body.limit ?? 500, 1), Self.maximumBatch)
            let dryRun = body.dryRun ?? false
            let batch = try await vault.runRetention(after: after, limit: limit, dryRun: dryRun)
            return try json(
                RetentionBatchView(
                    checked: batch.checked, purged: batch.purged, held: batch.held, failed: batch.failed, cursor: batch.cursor,
                    done: batch.done, dryRun: dryRun,
                    items: batch.items.map {
                        .init(
                            dossierId: $0.dossierID, verdict: $0.verdict, reason: $0.reason,
                            purgeDate: $0.purgeDate.map { rfc3339(milliseconds: $0) })
                    }))
        }
    }
}
