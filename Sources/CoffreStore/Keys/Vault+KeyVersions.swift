import CoffreCrypto
import CoffreDomain
import Foundation
import Logging

/// Master key versions: which are known, which is active, which are retired.
///
/// The index records each version it has seen (with a check value, never the key) and which
/// one is active; the key files say which are installed. At every start and reload the two are
/// reconciled, and anything that would make a dossier unreadable stops the start with a message
/// saying which file to install.
extension Vault {
    /// Reads the key files again and takes in new versions, without a restart (SIGHUP or
    /// `coffre admin keys reload`). A new version does not become active: rotating does that.
    @discardableResult
    func reloadMasterKeys() async throws(StoreError) -> MasterKeyStatus {
        let installed = try MasterKeyring.load(from: configuration.keyDirectories, arena: arena)
        let (holder, now, logger) = (masterKeys, clock.now(), logger)
        try await index.write("record master key versions") { transaction in
            let snapshot = try Self.reconcileMasterKeys(installed, transaction: transaction, now: now, logger: logger)
            holder.replace(with: snapshot)
        }
        return try await masterKeyStatus()
    }

    /// Retires `version`: refused while it is active or wraps anything. Once retired the daemon
    /// drops it from memory and never loads it again; its file can then be destroyed.
    @discardableResult
    func retireMasterKey(version: UInt32) async throws(StoreError) -> MasterKeyStatus {
        let (holder, now) = (masterKeys, clock.now())
        try await index.write("retire a master key") { transaction in
            guard var row = try transaction.masterKey(version: version) else {
                throw StoreError(.unknownKeyVersion, "this vault has never used a master key version \(version)")
            }
            if row.state == "retired" { return }
            guard row.state != "active" else {
                throw StoreError(
                    .keyInUse,
                    "master key version \(version) is the active key: install a newer one and run `coffre admin keys rotate` first")
            }
            let uses = try transaction.keyUsage()
            let wrapped = uses.total(version)
            guard wrapped == 0 else {
                throw StoreError(
                    .keyInUse,
                    "master key version \(version) still wraps \(wrapped) key(s): run `coffre admin keys rotate` and let it finish")
            }
            row.state = "retired"
            row.retiredAt = now
            try transaction.update(masterKey: row)
            let current = holder.current
            holder.replace(with: MasterKeySnapshot(keys: current.keys.filter { $0.key != version }, activeVersion: current.activeVersion))
        }
        logger.notice(
            "master key retired; its file can be destroyed", metadata: CoffreEvent.keyRetired.metadata(["key.version": "\(version)"]))
        return try await masterKeyStatus()
    }

    /// Every version, what it wraps, and the rotation.
    func masterKeyStatus() async throws(StoreError) -> MasterKeyStatus {
        let holder = masterKeys
        return try await index.read("read the master key versions") { transaction in
            // Taken once the read transaction has begun: key operations replace the snapshot
            // before they commit, so every version this read sees is in it.
            let rows = try transaction.masterKeys()
            let snapshot = holder.current
            let uses = try transaction.keyUsage()
            let purges = try transaction.purgeRecord().map { MasterKeyStatus.Purges(lastAt: $0.lastAt, dossiers: $0.dossiers) }
            let versions = rows.map { row in
                let version = UInt32(truncatingIfNeeded: row.version)
                return MasterKeyStatus.Version(
                    version: version, state: row.state, installed: snapshot.keys[version] != nil,
                    dossierKeys: uses.dossierKeys[version] ?? 0, archivedDossierKeys: uses.archivedKeys[version] ?? 0,
                    vaultKeys: uses.vaultKeys[version] ?? 0, addedAt: row.addedAt, retiredAt: row.retiredAt,
                    predatesLastPurge: purges.map { row.addedAt <= $0.lastAt } ?? false)
            }
            let rotation = try transaction.rotation().map { row in
                MasterKeyStatus.Rotation(
                    targetVersion: UInt32(truncatingIfNeeded: row.targetVersion), startedAt: row.startedAt, finishedAt: row.finishedAt,
                    done: Int(row.done), total: Int(max(row.total, row.done)), failed: Int(row.failed))
            }
            return MasterKeyStatus(activeVersion: snapshot.activeVersion, versions: versions, rotation: rotation, purges: purges)
        }
    }

    // MARK: Reconciliation

    /// Matches the installed key files with the versions the index knows, inside the caller's
    /// write transaction, and returns the keys to use.
    ///
    /// - A known version whose file holds another key stops everything (a wrong file).
    /// - New versions are recorded as available; retired ones are not loaded.
    /// - The active version is the index's; a vault that has none yet (new, or from before
    ///   versions were recorded, when the newest key was active) takes the newest installed.
    /// - Every version that still wraps a key must be installed.
    static func reconcileMasterKeys(
        _ installed: MasterKeyring, transaction: any IndexTransaction, now: Int64, logger: Logger
    ) throws -> MasterKeySnapshot {
        var known = Dictionary(uniqueKeysWithValues: try transaction.masterKeys().map { ($0.version, $0) })
        var usable: [UInt32: SymmetricKey] = [:]
        for (version, key) in installed.keys.sorted(by: { $0.key < $1.key }) {
            let check = Data(MasterKeyring.checkValue(of: key, version: version))
            if let row = known[Int64(version)] {
                guard row.checkValue == check else {
                    throw StoreError(
                        .keys,
                        "coffre-master-\(version) is not the master key this vault knows as version \(version): "
                            + "install the right file (keys/README.md)")
                }
                if row.state == "retired" {
                    logger.notice(
                        "a retired master key is still installed; destroy its file",
                        metadata: CoffreEvent.keyRetired.metadata(["key.version": "\(version)"]))
                    continue
                }
            } else {
                let row = MasterKeyRow(version: Int64(version), checkValue: check, state: "available", addedAt: now, retiredAt: nil)
                try transaction.insert(masterKey: row)
                known[row.version] = row
            }
            usable[version] = key
        }
        let active: UInt32
        if let row = known.values.first(where: { $0.state == "active" }) {
            active = UInt32(truncatingIfNeeded: row.version)
        } else {
            guard let newest = usable.keys.max() else {
                throw StoreError(.keys, "every installed master key is retired: install a new version (keys/README.md)")
            }
            try transaction.activate(version: newest)
            active = newest
        }
        guard usable[active] != nil else {
            throw StoreError(
                .keys, "the active master key, version \(active), is not installed: install coffre-master-\(active) (keys/README.md)")
        }
        let uses = try transaction.keyUsage()
        for version in uses.versions where usable[version] == nil {
            throw StoreError(
                .keys,
                "\(uses.total(version)) key(s) are wrapped by master key version \(version), which is not installed: "
                    + "install coffre-master-\(version) (keys/README.md)")
        }
        return MasterKeySnapshot(keys: usable, activeVersion: active)
    }
}
