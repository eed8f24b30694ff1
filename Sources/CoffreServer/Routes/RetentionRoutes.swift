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
    let pipeline: OperationPipeline
    /// The retention job's own user: its calls are the job's, anyone else's an operator's.
    let retentionUserID: UInt32?

    static let maximumBatch = 2_000

    func addHolds(to group: RouterGroup<CoffreRequestContext>) {
        group.post("patients/:ins/hold") { request, context in
            let ins = try context.patientINS()
            let body = try decodeJSON(HoldRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
            return try await operatorAnswer(.hold(reason: body.reason), ins, context)
        }
        // The death of a patient with no médecin traitant to record it (the site's records
        // office learns of it): the dossier is closed and kept for the legal retention.
        group.post("patients/:ins/death") { _, context in try await operatorAnswer(.recordDeath, try context.patientINS(), context) }
        group.delete("patients/:ins/hold") { _, context in try await operatorAnswer(.releaseHold, try context.patientINS(), context) }
    }

    /// Runs an operator's operation on a dossier through the pipeline (traced with the
    /// operator's uid before it is done, like every access).
    private func operatorAnswer(_ operation: DossierOperation, _ ins: INS, _ context: CoffreRequestContext) async throws -> Response {
        let caller = try await context.operatorCaller()
        let outcome = try await pipeline.perform(operation, on: ins, by: caller)
        let dossier = try outcome.dossierLeft()
        // The operator's answer: the dossier as the change left it.
        let count = try await pipeline.visibleDocumentCount(in: dossier, to: caller)
        return try json(DossierView(dossier, documentCount: count, retention: vault.retentionRules))
    }

    func addRetention(to group: RouterGroup<CoffreRequestContext>) {
        group.get("due") { _, context in
            try json(RetentionDueView(due: try await pipeline.retentionDue(by: try await retentionCaller(context))))
        }
        group.post("run") { request, context in
            let body = try decodeJSON(RetentionRunRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
            let after = body.after ?? ""
            guard after.isEmpty || DossierID(after) != nil else {
                throw Problem(.invalidIdentifier, detail: "after is a dossier id (32 lowercase hex) or empty")
            }
            let limit = min(max(body.limit ?? 500, 1), Self.maximumBatch)
            let dryRun = body.dryRun ?? false
            let batch = try await pipeline.runRetention(after: after, limit: limit, dryRun: dryRun, by: try await retentionCaller(context))
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

    /// The retention job when its own user calls, an operator otherwise.
    private func retentionCaller(_ context: CoffreRequestContext) async throws -> Caller {
        let caller = try await context.operatorCaller()
        guard case .operator(let uid) = caller, let retentionUserID, uid == retentionUserID else { return caller }
        return .retentionJob(uid: uid)
    }
}
