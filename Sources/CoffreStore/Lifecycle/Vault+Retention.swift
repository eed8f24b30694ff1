import CoffreDomain
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
    func retentionDue() async throws(StoreError) -> Int {
        try await index.countRetentionCandidates(dueBy: clock.now())
    }

    /// What the retention job needs of a dossier the index lists as due: its state, whether
    /// its key is gone, and its sealed lifecycle (opened without an INS to check: the job goes
    /// through dossiers, not patients). The row is read again and checked against its seal and
    /// its trace: a dossier put back from an older copy (closed before it was reopened, say)
    /// is never purged on what the older copy says.
    func purgeFacts(_ row: DossierRow, now: Int64) async -> PurgeFacts {
        var facts = PurgeFacts(purging: row.state == "purging", keyDestroyed: row.wrappedKey.isEmpty, lifecycle: nil, now: now)
        guard !facts.purging else { return facts }
        do throws(StoreError) {
            guard let checked = try await checkedDossier(.id(row.id)) else {
                facts.unreadable = "the dossier changed while the retention job read it"
                return facts
            }
            facts.lifecycle = try openDossierRow(checked.row, ins: nil).1.lifecycle
        } catch {
            facts.unreadable = error.message
        }
        return facts
    }
}
