import CoffreCrypto
public import CoffreDomain
import Foundation
import GRDB
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
    public func reloadMasterKeys() async throws(StoreError) -> MasterKeyStatus {
        let installed = try MasterKeyring.load(from: configuration.keyDirectories, arena: arena)
        let (holder, now, logger) = (masterKeys, clock.now(), logger)
        try await index.write("record master key versions") { db in
            let snapshot = try Self.reconcileMasterKeys(installed, db: db, now: now, logger: logger)
            holder.replace(with: snapshot)
        }
        return try await masterKeyStatus()
    }

    /// Retires `version`: refused while it is active or wraps anything. Once retired the daemon
    /// drops it from memory and never loads it again; its file can then be destroyed.
    @discardableResult
    public func retireMasterKey(version: UInt32) async throws(StoreError) -> MasterKeyStatus {
        let (holder, now) = (masterKeys, clock.now())
        try await index.write("retire a master key") { db in
            guard var row = try MasterKeyRow.fetchOne(db, key: Int64(version)) else {
                throw StoreError(.unknownKeyVersion, "this vault has never used a master key version \(version)")
            }
            if row.state == "retired" { return }
            guard row.state != "active" else {
                throw StoreError(
                    .keyInUse,
                    "master key version \(version) is the active key: install a newer one and run `coffre admin keys rotate` first")
            }
            let uses = try Self.keyUsage(db)
            let wrapped = uses.total(version)
            guard wrapped == 0 else {
                throw StoreError(
                    .keyInUse,
                    "master key version \(version) still wraps \(wrapped) key(s): run `coffre admin keys rotate` and let it finish")
            }
            row.state = "retired"
            row.retiredAt = now
            try row.update(db)
            let current = holder.current
            holder.replace(with: MasterKeySnapshot(keys: current.keys.filter { $0.key != version }, activeVersion: current.activeVersion))
        }
        logger.notice(
            "master key retired; its file can be destroyed", metadata: CoffreEvent.keyRetired.metadata(["key.version": "\(version)"]))
        return try await masterKeyStatus()
    }

    /// Every version, what it wraps, and the rotation.
    public func masterKeyStatus() async throws(StoreError) -> MasterKeyStatus {
        let holder = masterKeys
        return try await index.read("read the master key versions") { db in
            // Taken once the read transaction has begun: key operations replace the snapshot
            // before they commit, so every version this read sees is in it.
            _ = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM master_key")
            let snapshot = holder.current
            let uses = try Self.keyUsage(db)
            let purges = try Row.fetchOne(db, sql: "SELECT last_purge_at, dossiers_purged FROM purge_record WHERE id = 1").map {
                MasterKeyStatus.Purges(lastAt: $0[0], dossiers: $0[1])
            }
            let versions = try MasterKeyRow.order(Column("version")).fetchAll(db).map { row in
                let version = UInt32(truncatingIfNeeded: row.version)
                return MasterKeyStatus.Version(
                    version: version, state: row.state, installed: snapshot.keys[version] != nil,
                    dossierKeys: uses.dossierKeys[version] ?? 0, archivedDossierKeys: uses.archivedKeys[version] ?? 0,
                    vaultKeys: uses.vaultKeys[version] ?? 0, addedAt: row.addedAt, retiredAt: row.retiredAt,
                    predatesLastPurge: purges.map { row.addedAt <= $0.lastAt } ?? false)
            }
            let rotation = try KeyRotationRow.fetchOne(db).map { row in
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
        _ installed: MasterKeyring, db: Database, now: Int64, logger: Logger
    ) throws -> MasterKeySnapshot {
        var known = Dictionary(uniqueKeysWithValues: try MasterKeyRow.fetchAll(db).map { ($0.version, $0) })
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
                try row.insert(db)
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
            try db.execute(sql: "UPDATE master_key SET state = 'active' WHERE version = ?", arguments: [Int64(newest)])
            active = newest
        }
        guard usable[active] != nil else {
            throw StoreError(
                .keys, "the active master key, version \(active), is not installed: install coffre-master-\(active) (keys/README.md)")
        }
        let uses = try keyUsage(db)
        for version in uses.versions where usable[version] == nil {
            throw StoreError(
                .keys,
                "\(uses.total(version)) key(s) are wrapped by master key version \(version), which is not installed: "
                    + "install coffre-master-\(version) (keys/README.md)")
        }
        return MasterKeySnapshot(keys: usable, activeVersion: active)
    }

    /// How many keys each master key version wraps.
    struct KeyUsage {
        var dossierKeys: [UInt32: Int] = [:]
        var archivedKeys: [UInt32: Int] = [:]
        var vaultKeys: [UInt32: Int] = [:]

        var versions: Set<UInt32> { Set(dossierKeys.keys).union(archivedKeys.keys).union(vaultKeys.keys) }

        func total(_ version: UInt32) -> Int {
            (dossierKeys[version] ?? 0) + (archivedKeys[version] ?? 0) + (vaultKeys[version] ?? 0)
        }
    }

    /// Counts through `dossier_by_master_version`, so a start does not read every dossier row.
    static func keyUsage(_ db: Database) throws -> KeyUsage {
        func counts(_ sql: String) throws -> [UInt32: Int] {
            var result: [UInt32: Int] = [:]
            for row in try Row.fetchAll(db, sql: sql) {
                let version: Int64 = row[0]
                result[UInt32(truncatingIfNeeded: version), default: 0] += row[1] as Int
            }
            return result
        }
        return KeyUsage(
            dossierKeys: try counts("SELECT master_version, COUNT(*) FROM dossier WHERE master_version > 0 GROUP BY master_version"),
            archivedKeys: try counts("SELECT master_version, COUNT(*) FROM dossier_key_archive GROUP BY master_version"),
            vaultKeys: try counts("SELECT master_version, COUNT(*) FROM vault_key GROUP BY master_version"))
    }
}
