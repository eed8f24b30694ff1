public import CoffreDomain
import Foundation
import Logging

/// A change in a dossier's life.
public enum LifecycleChange: Sendable {
    case close(reason: DossierLifecycle.ClosureReason, deletionRequested: Bool)
    case reopen
    case hold(reason: String)
    case releaseHold
}

extension Vault {
    /// Applies a lifecycle change, refusing illegal transitions with `illegalTransition`.
    public func changeLifecycle(for ins: INS, _ change: LifecycleChange) async throws(StoreError) -> DossierRecord {
        let now = clock.now()
        let (record, _) = try await updateSealedFields(for: ins) { (fields) throws(StoreError) in
            do throws(LifecycleError) {
                switch change {
                case .close(let reason, let deletion):
                    fields.lifecycle = try fields.lifecycle.closing(at: now, reason: reason, deletionRequested: deletion)
                case .reopen: fields.lifecycle = try fields.lifecycle.reopening()
                case .hold(let reason): fields.lifecycle = try fields.lifecycle.holding(reason: reason)
                case .releaseHold: fields.lifecycle = try fields.lifecycle.releasingHold()
                }
            } catch {
                throw StoreError(.illegalTransition, error.description)
            }
        }
        logger.info("dossier lifecycle changed", metadata: ["dossier.id": "\(record.id)", "dossier.state": "\(record.state)"])
        return record
    }

    /// The patient opposes their dossier: within the opposition window it is destroyed at once
    /// (nothing to keep), by the same crypto-shredding purge as retention.
    public func oppose(_ dossier: DossierRecord) async throws(StoreError) {
        do {
            try dossier.lifecycle.checkOpposition(at: clock.now(), rules: configuration.retention)
        } catch {
            throw StoreError(.illegalTransition, error.description)
        }
        try await purge(dossierID: dossier.id.value, reason: "opposition")
        try await index.checkpointTruncate()
    }

    /// Destroys a dossier for good, in an order that survives a crash at any step:
    /// 1. the dossier key is destroyed (its wrapped bytes overwritten in place): from then on
    ///    nothing of the dossier can be read, here or in any backup of its blobs;
    /// 2. its blobs are removed;
    /// 3. its rows go (documents and notifications with them);
    /// 4. the trace records the purge, with the dossier's random id and the reason only.
    /// A purge interrupted after step 1 leaves the row in state `purging`, which the next
    /// retention run finishes. Trace entries stay: their detail was encrypted under the
    /// destroyed key, and the chain runs over the ciphertext, so it still verifies.
    func purge(dossierID: String, reason: String) async throws(StoreError) {
        try await index.destroyDossierKey(id: dossierID)
        for id in try await index.documentIDs(dossierID: dossierID) {
            try await blobs.remove(DocumentID(unchecked: id))
        }
        try await index.deleteDossier(id: dossierID)
        do {
            let detail = #"{"rule":"\#(reason)"}"#
            _ = try await trace.append(
                dossierID: dossierID, action: "dossier.purge", outcome: TraceOutcome.allowed.rawValue, detail: detail, seal: { _ in nil })
        } catch {
            throw StoreError(.io, "the purge of dossier \(dossierID) is done but could not be traced: \(error)")
        }
        logger.notice("dossier purged", metadata: ["dossier.id": "\(dossierID)", "purge.reason": "\(reason)"])
    }
}
