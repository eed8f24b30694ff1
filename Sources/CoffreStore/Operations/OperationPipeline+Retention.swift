public import CoffreDomain

/// The retention run: the retention job (or an operator) goes through the dossiers due for
/// purge; the domain gives each one's verdict from its sealed lifecycle and plans its purge
/// entry, which names who purged; the vault destroys what the plan says, entry first.
extension OperationPipeline {
    /// Looks at up to `limit` dossiers due for purge after `cursor` and purges those whose
    /// sealed lifecycle confirms it (a tampered clear column can never cause a purge), unless a
    /// legal hold blocks it. Interrupted purges are finished. In a dry run nothing changes.
    /// - Throws: `Refusal` (traced) for a caller who may not run it, `StoreError`.
    public func runRetention(after cursor: String, limit: Int, dryRun: Bool, by caller: Caller) async throws -> RetentionBatch {
        try await record(.runRetention(dryRun: dryRun), by: caller)
        let now = vault.clock.now()
        let rows = try await vault.index.retentionCandidates(dueBy: now, after: cursor, limit: limit)
        var batch = RetentionBatch(cursor: rows.last?.id ?? cursor, done: rows.count < limit)
        for row in rows {
            batch.checked += 1
            var item = RetentionBatch.Item(dossierID: row.id, verdict: "purge", reason: "", purgeDate: row.purgeAfter)
            switch planner.retentionVerdict(await vault.purgeFacts(row, now: now)) {
            case .purge(let reason):
                item.reason = reason
                guard !dryRun else { break }
                do {
                    try await vault.purge(row, entry: OperationPlanner.purgeEntry(reason: reason, by: caller), checkpoint: false)
                } catch {
                    item.verdict = "failed"
                    item.reason = error.message
                }
            case .held:
                item.verdict = "held"
                item.reason = "legal hold"
            case .failed(let reason):
                item.verdict = "failed"
                item.reason = reason
            }
            switch item.verdict {
            case "purge": batch.purged += 1
            case "held": batch.held += 1
            default: batch.failed += 1
            }
            batch.items.append(item)
        }
        // One erasure for the batch: no old page keeps a destroyed key in the index's logs.
        if !dryRun && batch.checked > 0 { try await vault.index.eraseDeletedRows() }
        return batch
    }
}
