import CoffreCrypto
public import CoffreDomain
import Dispatch
import Foundation
import Logging

/// Progress of one rotation batch.
public struct RotationStep: Sendable, Equatable {
    /// Dossier keys rewrapped by this batch.
    public var rewrapped: Int
    /// Keys that would not unwrap, left as they were.
    public var failed: Int
    /// Whether the rotation is complete.
    public var finished: Bool
}

/// Online master key rotation: the newest installed version becomes active at once (new
/// dossier keys are wrapped under it), then every dossier key still wrapped by an older version
/// is rewrapped, in batches, by a background job (`KeyRotationService` in the server).
///
/// Each batch is one write transaction that rewraps up to `limit` dossier rows in rowid order
/// and moves the cursor stored in `key_rotation` with them, so a crash loses at most the batch
/// in flight and the job resumes exactly where the last commit left it. Blobs are never touched:
/// document keys are wrapped by the dossier key, which does not change.
extension Vault {
    /// Makes the newest installed master key active and records a rotation for the background
    /// job to carry out. Reads the key files first, so installing a file then rotating needs no
    /// reload in between.
    ///
    /// - Parameter developmentKeyDirectory: in development mode, where to create the next
    ///   master key when no newer one is installed (so rotation can be tried from a shell).
    @discardableResult
    func startRotation(developmentKeyDirectory: String? = nil) async throws(StoreError) -> MasterKeyStatus {
        var installed = try MasterKeyring.load(from: configuration.keyDirectories, arena: arena)
        if let directory = developmentKeyDirectory {
            let versions = try await index.read("read the master key versions") { transaction in try transaction.masterKeys() }
            let highestKnown = versions.map(\.version).max() ?? 0
            let retired = Set(versions.filter { $0.state == "retired" }.map(\.version))
            // A retired version above the active one can never become active: it does not count.
            let newestUsable = installed.keys.keys.filter { !retired.contains(Int64($0)) }.max() ?? 0
            if newestUsable <= masterKeys.current.activeVersion {
                let next = max(UInt32(truncatingIfNeeded: highestKnown), installed.newestVersion ?? 0) + 1
                try MasterKeyring.writeNewKey(version: next, in: directory)
                installed = try MasterKeyring.load(from: configuration.keyDirectories, arena: arena)
            }
        }
        let (holder, now, logger, arena, ring) = (masterKeys, clock.now(), logger, arena, installed)
        let target = try await index.write("start a key rotation") { transaction -> UInt32 in
            let snapshot = try Self.reconcileMasterKeys(ring, transaction: transaction, now: now, logger: logger)
            let target = snapshot.keys.keys.max()!
            let rotation = try transaction.rotation()
            let pending = try Self.keysNotUnder(target, transaction)
            let vaultKeysPending = try transaction.vaultKeys(notUnder: target).count
            let rotationRunning = rotation != nil && rotation?.finishedAt == nil
            if target == snapshot.activeVersion && pending == 0 && vaultKeysPending == 0 && !rotationRunning {
                throw StoreError(
                    .noNewerKey,
                    "master key version \(target) is active and wraps every key: install coffre-master-\(target + 1), "
                        + "then run `coffre admin keys rotate` (keys/README.md)")
            }
            try transaction.activate(version: target)
            try Self.rewrapVaultKeys(under: target, snapshot: snapshot, transaction: transaction, arena: arena)
            if rotation == nil || rotation?.finishedAt != nil || rotation?.targetVersion != Int64(target) {
                try transaction.save(
                    rotation: KeyRotationRow(targetVersion: Int64(target), startedAt: now, cursor: 0, total: Int64(pending), done: 0))
            }
            holder.replace(with: MasterKeySnapshot(keys: snapshot.keys, activeVersion: target))
            return target
        }
        logger.notice("master key rotation started", metadata: CoffreEvent.rotationStarted.metadata(["key.version": "\(target)"]))
        return try await masterKeyStatus()
    }

    /// Whether a rotation is recorded and not finished (the daemon resumes it at start).
    public func rotationPending() async throws(StoreError) -> Bool {
        try await index.read("read the key rotation") { transaction in
            try transaction.rotation().map { $0.finishedAt == nil } ?? false
        }
    }

    /// Rewraps the next `limit` dossier rows in one transaction; nil when no rotation is pending.
    public func rotateBatch(limit: Int) async throws(StoreError) -> RotationStep? {
        let (holder, now, arena, logger) = (masterKeys, clock.now(), arena, logger)
        let step = try await index.write("rewrap dossier keys") { transaction -> RotationStep? in
            guard var rotation = try transaction.rotation(), rotation.finishedAt == nil else { return nil }
            let snapshot = holder.current
            let target = UInt32(truncatingIfNeeded: rotation.targetVersion)
            guard let targetKey = snapshot.key(version: target) else {
                throw StoreError(.keys, "the rotation's target, master key version \(target), is not installed")
            }
            var step = RotationStep(rewrapped: 0, failed: 0, finished: false)
            let rows = try transaction.dossierKeys(after: rotation.cursor, limit: limit)
            let work: [(rowid: Int64, id: String, from: UInt32, wrapped: Data)] = rows.compactMap { row in
                guard row.masterVersion != Int64(target), row.masterVersion > 0 else { return nil }
                return (row.position, row.dossierID, UInt32(truncatingIfNeeded: row.masterVersion), row.wrappedKey)
            }
            // The unwrap and wrap of a batch run on every core while this transaction holds the
            // writer; the updates then go in one after the other.
            var rewrapped = [Data?](repeating: nil, count: work.count)
            let lanes = max(1, min(ProcessInfo.processInfo.activeProcessorCount, work.count))
            rewrapped.withUnsafeMutableBufferPointer { buffer in
                // Each lane writes only its own indices (lane, lane + lanes, …) and
                // concurrentPerform returns once every lane is done: no two threads touch one slot.
                nonisolated(unsafe) let results = buffer
                DispatchQueue.concurrentPerform(iterations: lanes) { lane in
                    for index in stride(from: lane, to: work.count, by: lanes) {
                        let item = work[index]
                        let dossier = DossierID(unchecked: item.id)
                        results[index] = Self.rewrap(
                            item.wrapped, from: snapshot.key(version: item.from), Self.dossierKeyContext(dossier, item.from),
                            to: targetKey, Self.dossierKeyContext(dossier, target), arena: arena)
                    }
                }
            }
            for (item, result) in zip(work, rewrapped) {
                guard let result else {
                    step.failed += 1
                    logger.error(
                        "a dossier key does not unwrap; left under its old master key",
                        metadata: CoffreEvent.integrityFailure.metadata(["dossier.id": "\(item.id)", "key.version": "\(item.from)"]))
                    continue
                }
                try transaction.updateDossierKey(at: item.rowid, masterVersion: target, wrappedKey: result)
                step.rewrapped += 1
            }
            rotation.done += Int64(step.rewrapped)
            rotation.failed += Int64(step.failed)
            if let last = rows.last, rows.count == limit {
                rotation.cursor = last.position
            } else {
                // The dossier rows are done; the few archived keys of rekeyed dossiers follow.
                let archived = try Self.rewrapArchivedKeys(under: target, snapshot: snapshot, transaction: transaction, arena: arena)
                rotation.done += Int64(archived.rewrapped)
                rotation.failed += Int64(archived.failed)
                // Dossiers created with the old version while the rotation started, and rows
                // whose rowid was reused behind the cursor, send the job round once more.
                let left = try transaction.dossierKeyCount(notUnder: target)
                if left > Int(rotation.failed) {
                    rotation.cursor = 0
                    rotation.total = max(rotation.total, rotation.done + Int64(left))
                } else {
                    rotation.finishedAt = now
                    step.finished = true
                }
            }
            try transaction.save(rotation: rotation)
            return step
        }
        if let step, step.finished {
            logger.notice("master key rotation finished", metadata: CoffreEvent.rotationFinished.metadata())
        }
        return step
    }

    /// Unwraps `wrapped` and wraps the key again; nil if it does not unwrap.
    static func rewrap(
        _ wrapped: Data, from oldKey: SymmetricKey?, _ oldContext: WrapContext, to newKey: SymmetricKey, _ newContext: WrapContext,
        arena: SecureArena
    ) -> Data? {
        guard let oldKey, let key = try? KeyWrap.unwrap(Array(wrapped), with: oldKey, context: oldContext, in: arena) else {
            return nil
        }
        return Data(KeyWrap.wrap(key, with: newKey, context: newContext))
    }

    /// Dossier keys (current and archived generations) not wrapped by `version`: the batches'
    /// work. The vault's own two keys are rewrapped at the start, not counted.
    static func keysNotUnder(_ version: UInt32, _ transaction: any IndexTransaction) throws -> Int {
        let uses = try transaction.keyUsage()
        return uses.versions.filter { $0 != version }.reduce(0) { $0 + (uses.dossierKeys[$1] ?? 0) + (uses.archivedKeys[$1] ?? 0) }
    }

    /// The vault's own keys (two rows) are rewrapped when the rotation starts.
    static func rewrapVaultKeys(under target: UInt32, snapshot: MasterKeySnapshot, transaction: any IndexTransaction, arena: SecureArena)
        throws
    {
        for var row in try transaction.vaultKeys(notUnder: target) {
            let from = UInt32(truncatingIfNeeded: row.masterVersion)
            guard
                let rewrapped = rewrap(
                    row.wrappedKey, from: snapshot.key(version: from), vaultKeyContext(row.purpose, from),
                    to: snapshot.key(version: target)!,
                    vaultKeyContext(row.purpose, target), arena: arena)
            else {
                throw StoreError(.integrity, "the vault's \(row.purpose) key does not unwrap under master key version \(from)")
            }
            row.masterVersion = Int64(target)
            row.wrappedKey = rewrapped
            try transaction.update(vaultKey: row)
        }
    }

    static func rewrapArchivedKeys(
        under target: UInt32, snapshot: MasterKeySnapshot, transaction: any IndexTransaction, arena: SecureArena
    ) throws -> (rewrapped: Int, failed: Int) {
        var result = (rewrapped: 0, failed: 0)
        for var row in try transaction.archivedKeys(notUnder: target) {
            let from = UInt32(truncatingIfNeeded: row.masterVersion)
            let dossier = DossierID(unchecked: row.dossierId)
            let generation = UInt32(truncatingIfNeeded: row.keyGeneration)
            guard
                let rewrapped = rewrap(
                    row.wrappedKey, from: snapshot.key(version: from), archivedKeyContext(dossier, generation, from),
                    to: snapshot.key(version: target)!, archivedKeyContext(dossier, generation, target), arena: arena)
            else {
                result.failed += 1
                continue
            }
            row.masterVersion = Int64(target)
            row.wrappedKey = rewrapped
            try transaction.update(archivedKey: row)
            result.rewrapped += 1
        }
        return result
    }
}
