public import CoffreDomain
import Foundation

/// What one retention batch did (or, in a dry run, would do).
public struct RetentionBatch: Sendable, Equatable {
    public struct Item: Sendable, Equatable {
        public var dossierID: String
        /// `purge`, `held` or `failed`.
        public var verdict: String
        /// Why: `retention-over`, `deletion-request`, `resume-interrupted-purge`, a hold, or the error.
        public var reason: String
        /// When the dossier became due (ms since epoch), if known.
        public var purgeDate: Int64?
    }

    public var checked = 0
    public var purged = 0
    public var held = 0
    public var failed = 0
    /// Where the next batch starts (the last dossier id looked at).
    public var cursor: String
    /// Whether there is nothing after this batch.
    public var done: Bool
    public var items: [Item] = []
}

extension Vault {
    /// How many dossiers the retention job has to look at now.
    public func retentionDue() async throws(StoreError) -> Int {
        try await index.countRetentionCandidates(dueBy: clock.now())
    }

    /// Looks at up to `limit` dossiers due for purge after `cursor` and purges those whose
    /// sealed lifecycle confirms it (a tampered clear column can never cause a purge), unless a
    /// legal hold blocks it. Interrupted purges are finished. In a dry run nothing changes.
    public func runRetention(after cursor: String, limit: Int, dryRun: Bool) async throws(StoreError) -> RetentionBatch {
        let now = clock.now()
        let rows = try await index.retentionCandidates(dueBy: now, after: cursor, limit: limit)
        var batch = RetentionBatch(cursor: rows.last?.id ?? cursor, done: rows.count < limit)
        for row in rows {
            batch.checked += 1
            var item = RetentionBatch.Item(
                dossierID: row.id, verdict: "purge", reason: "resume-interrupted-purge", purgeDate: row.purgeAfter)
            if row.state == "purging" && !row.wrappedKey.isEmpty {
                // A clear column alone never causes a purge.
                item.verdict = "failed"
                item.reason = "the index says purging but the dossier key is still there; check the index"
            } else if row.state != "purging" {
                switch verdict(row, now: now) {
                case .success(.purge(let reason)): item.reason = reason
                case .success(.held):
                    item.verdict = "held"
                    item.reason = "legal hold"
                case .success(.keep):
                    // The clear column said due, the sealed lifecycle says not: keep, and say so.
                    item.verdict = "failed"
                    item.reason = "the index's purge date disagrees with the dossier's sealed record"
                case .failure(let error):
                    item.verdict = "failed"
                    item.reason = error.message
                }
            }
            if item.verdict == "purge" && !dryRun {
                do {
                    try await purge(row, reason: item.reason, checkpoint: false)
                } catch {
                    item.verdict = "failed"
                    item.reason = error.message
                }
            }
            switch item.verdict {
            case "purge": batch.purged += 1
            case "held": batch.held += 1
            default: batch.failed += 1
            }
            batch.items.append(item)
        }
        // One TRUNCATE checkpoint for the batch: no old page keeps a destroyed key in the WAL.
        if !dryRun && batch.checked > 0 { try await index.eraseDeletedRows() }
        return batch
    }

    /// The retention verdict from the dossier's sealed lifecycle (the source of truth).
    private func verdict(_ row: DossierRow, now: Int64) -> Result<RetentionVerdict, StoreError> {
        do throws(StoreError) {
            let (_, fields) = try openDossierRow(row, ins: nil)
            return .success(fields.lifecycle.retentionVerdict(at: now, rules: configuration.retention))
        } catch {
            return .failure(error)
        }
    }
}
