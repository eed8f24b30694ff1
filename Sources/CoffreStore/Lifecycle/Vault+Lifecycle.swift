import CoffreDomain
import Foundation
import Logging

extension Vault {
    /// The patient opposes their dossier: within the opposition window it is destroyed at once
    /// (nothing to keep), by the same crypto-shredding purge as retention. The decision is made
    /// on the dossier as it is now, and a hold set meanwhile wins.
    func oppose(_ dossier: DossierRecord) async throws(StoreError) {
        guard let row = try await checkedDossier(.insHash(insHash(dossier.ins)))?.row else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        let (_, fields) = try openDossierRow(row, ins: dossier.ins)
        do {
            try fields.lifecycle.checkOpposition(at: clock.now(), rules: configuration.retention)
        } catch {
            throw StoreError(.illegalTransition, error.description)
        }
        try await purge(row, entry: OperationPlanner.purgeEntry(reason: "opposition"))
    }

    /// Destroys a dossier for good, in an order that survives a crash at any step:
    /// 0. the trace records the purge, with the dossier's random id and the reason only (before
    ///    acting, like every access);
    /// 1. the dossier key is destroyed (its wrapped bytes overwritten in place), provided the
    ///    dossier has not changed since the decision: from then on nothing of it can be read
    ///    here, nor in a copy of its blobs without the index of before the purge (a backup of
    ///    that index keeps the wrapped key: it is shredded too once the master key version that
    ///    wrapped it is retired and destroyed, see security.md);
    /// 2. its blobs are removed;
    /// 3. its rows go (documents and notifications with them);
    /// 4. the index erases what its logs keep of deleted rows, so no old page keeps the
    ///    destroyed key.
    /// A purge interrupted after step 1 leaves the row in state `purging` with no key, which
    /// the next retention run finishes. Trace entries stay: their detail was encrypted under the
    /// destroyed key, and the chain runs over the ciphertext, so it still verifies.
    /// - Parameters:
    ///   - entry: the purge's trace entry, as planned (`OperationPlanner.purgeEntry`).
    ///   - checkpoint: false when the caller (a retention batch) checkpoints once for many purges.
    func purge(_ row: DossierRow, entry: TraceDetail, checkpoint: Bool = true) async throws(StoreError) {
        let dossierID = row.id
        let resuming = row.state == "purging" && row.wrappedKey.isEmpty
        try await tracePurge(dossierID, outcome: .allowed, entry: entry)
        if !resuming {
            guard try await index.destroyDossierKey(id: dossierID, ifSealedIs: row.sealed, at: clock.now()) else {
                var failed = entry
                failed.rule = "changed-during-purge"
                try? await tracePurge(dossierID, outcome: .failed, entry: failed)
                throw StoreError(.conflict, "dossier \(dossierID) changed while it was being purged (a hold or a reopening); not purged")
            }
        }
        do {
            for name in try await index.blobNames(dossierID: dossierID) {
                try await blobs.remove(name)
            }
            try await index.deleteDossier(id: dossierID)
            verified.forget(dossierID)
        } catch {
            try? await index.eraseDeletedRows()
            throw error
        }
        if checkpoint { try await index.eraseDeletedRows() }
        logger.notice("dossier purged", metadata: ["dossier.id": "\(dossierID)", "purge.reason": "\(entry.rule ?? "-")"])
    }

    /// The purge's entry: the dossier's random id, the reason and who purged, in clear (the key
    /// that would seal anything else is being destroyed), nothing personal.
    private func tracePurge(_ dossierID: String, outcome: TraceOutcome, entry: TraceDetail) async throws(StoreError) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let detail = String(decoding: try encoder.encode(entry.anonymous), as: UTF8.self)
            _ = try await trace.append(
                TraceWriter.Entry(
                    dossierID: dossierID, action: DossierAction.purgeDossier.rawValue, outcome: outcome.rawValue, detail: detail,
                    seal: { _ in nil }))
        } catch {
            throw StoreError(.io, "the purge of dossier \(dossierID) cannot be traced, so it was not done: \(error)")
        }
    }
}
