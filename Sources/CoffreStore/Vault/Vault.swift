#if canImport(Glibc)
    import Glibc
#endif
public import CoffreCrypto
public import CoffreDomain
import Foundation
public import Logging
import NIOCore

/// The vault: the index, the blobs and the key hierarchy, combined.
///
/// Keys: master key (version N) → dossier key (one per dossier, wrapped by the master key with
/// the dossier id and N as associated data) → document key (one per document, wrapped by the
/// dossier key with dossier id, document id and the dossier key generation as associated data).
/// A blob is a `crypto_secretstream` stream under its document key. Look-ups by INS go through a
/// keyed hash under the vault's look-up key, itself wrapped by a master key.
public struct Vault: Sendable {
    let configuration: VaultConfiguration
    let index: any VaultIndex
    let blobs: any BlobStore
    /// The master keys in force (replaced by reloads, rotations and retirements).
    let masterKeys: MasterKeys
    let lookupKey: SymmetricKey
    /// Seals who made a decision that names no dossier (a refusal for a patient who has none):
    /// the trace keeps the caller's identity without writing it in clear.
    let unattachedTraceKey: SymmetricKey
    /// Binds each dossier's rows into one version of it (`DossierSeal`).
    let seal: DossierSeal
    /// Dossiers whose document rows were checked against their seal, by generation.
    let verified = VerifiedDossiers()
    let arena: SecureArena
    let clock: any VaultClock
    let logger: Logger
    let lock: StateLock
    /// The tamper-evident trace: every access decision, chained and signed.
    let trace: TraceWriter
    /// Dossiers being rekeyed now: a second rekey of the same dossier is refused at once.
    let rekeysInFlight = InFlight()
    /// What the start-up recovery found and did.
    public let recovery: RecoveryReport

    /// The largest document accepted, in bytes.
    public var maxDocumentSize: Int64 { configuration.maxDocumentSize }

    /// The retention period, deletion delay and opposition window in force.
    public var retentionRules: RetentionRules { configuration.retention }

    /// Opens the vault: loads the master keys and reconciles them with the versions the index
    /// knows, opens (and migrates) the index, removes leftovers of interrupted writes, and
    /// reconciles blobs with the index after an unclean stop.
    ///
    /// - Parameter reconciling: called while blobs are reconciled after an unclean stop (a
    ///   pass over every blob: seconds per million documents), with the number of shards done
    ///   out of 256: 0 before the index is read, then after each shard.
    public static func open(
        configuration: VaultConfiguration,
        io: BlockingIO,
        arena: SecureArena,
        clock: any VaultClock,
        logger: Logger,
        reconciling: (@Sendable (_ shardsDone: Int) -> Void)? = nil
    ) async throws(StoreError) -> Vault {
        try POSIX.makeDirectory(configuration.stateDirectory)
        let lock = try StateLock.acquire(directory: configuration.stateDirectory)
        let index = try SQLiteIndex(path: configuration.indexPath, syncInterval: configuration.traceSyncInterval, logger: logger)
        let blobs = FileBlobStore(root: configuration.blobDirectory, io: io)
        return try await open(
            configuration: configuration, index: index, blobs: blobs, lock: lock, arena: arena, clock: clock, logger: logger,
            reconciling: reconciling)
    }

    /// Opens the vault over the index and the blob store given (the engines of one site).
    static func open(
        configuration: VaultConfiguration,
        index: any VaultIndex,
        blobs: any BlobStore,
        lock: StateLock,
        arena: SecureArena,
        clock: any VaultClock,
        logger: Logger,
        reconciling: (@Sendable (_ shardsDone: Int) -> Void)? = nil
    ) async throws(StoreError) -> Vault {
        let installed = try MasterKeyring.load(from: configuration.keyDirectories, arena: arena)
        let now = clock.now()
        let snapshot = try await index.write("record master key versions") { transaction in
            try Self.reconcileMasterKeys(installed, transaction: transaction, now: now, logger: logger)
        }
        let lookupKey = try await Self.vaultKey(purpose: lookupKeyPurpose, index: index, masterKeys: snapshot, arena: arena).key
        // Whether the trace key is made now: only then may a missing anchor file mean a new vault.
        let (traceSeed, newTrace) = try await Self.vaultKey(purpose: traceSigningPurpose, index: index, masterKeys: snapshot, arena: arena)
        let unattachedTraceKey = try await Self.vaultKey(
            purpose: unattachedTracePurpose, index: index, masterKeys: snapshot, arena: arena
        ).key
        let seal = DossierSeal(
            key: try await Self.vaultKey(purpose: dossierSealPurpose, index: index, masterKeys: snapshot, arena: arena).key)
        let traceKeys = try TraceKeys(seed: traceSeed, arena: arena)
        let anchors = try await TraceAnchors.open(
            path: configuration.traceAnchorPath, keys: traceKeys, index: index, newTrace: newTrace, logger: logger)
        let trace = try await TraceWriter(index: index, keys: traceKeys, anchors: anchors, clock: clock)
        let recovery = try await recover(
            index: index, blobs: blobs, configuration: configuration, logger: logger, reconciling: reconciling)
        let vault = Vault(
            configuration: configuration, index: index, blobs: blobs, masterKeys: MasterKeys(snapshot),
            lookupKey: lookupKey, unattachedTraceKey: unattachedTraceKey, seal: seal, arena: arena, clock: clock, logger: logger,
            lock: lock, trace: trace, recovery: recovery)
        try await vault.sealUnsealedDossiers()
        return vault
    }

    static let lookupKeyPurpose = "ins-lookup"
    static let traceSigningPurpose = "trace-signing"
    static let unattachedTracePurpose = "trace-unattached"
    static let dossierSealPurpose = "dossier-seal"

    /// A key of the vault itself (the INS look-up key, the trace signing seed): created on first
    /// start, stored wrapped by the active master key, unwrapped into the arena; `created`
    /// says whether this call made it.
    static func vaultKey(
        purpose: String, index: any VaultIndex, masterKeys: MasterKeySnapshot, arena: SecureArena
    ) async throws(StoreError) -> (key: SymmetricKey, created: Bool) {
        let row: VaultKeyRow
        let existing = try await index.vaultKey(purpose: purpose)
        if let existing {
            row = existing
        } else {
            let fresh = try Self.crypto { () throws(CryptoError) in try SymmetricKey.random(in: arena) }
            let context = vaultKeyContext(purpose, masterKeys.activeVersion)
            row = try await index.insertVaultKeyIfAbsent(
                VaultKeyRow(
                    purpose: purpose, masterVersion: Int64(masterKeys.activeVersion),
                    wrappedKey: Data(KeyWrap.wrap(fresh, with: masterKeys.activeKey, context: context))))
        }
        guard let version = UInt32(exactly: row.masterVersion), let master = masterKeys.key(version: version) else {
            throw StoreError(.keys, "the index needs master key version \(row.masterVersion), which is not installed")
        }
        do {
            let key = try KeyWrap.unwrap(Array(row.wrappedKey), with: master, context: vaultKeyContext(purpose, version), in: arena)
            return (key, existing == nil)
        } catch {
            throw StoreError(.keys, "master key version \(version) does not open this index's \(purpose) key: wrong key installed?")
        }
    }

    static func vaultKeyContext(_ purpose: String, _ masterVersion: UInt32) -> WrapContext {
        WrapContext(purpose: purpose, owners: [], wrappingKeyVersion: masterVersion)
    }

    /// Removes temporary blobs; after an unclean stop, also removes blobs the index never
    /// acknowledged (linked into place, but the process died before the row committed) and
    /// reports rows whose blob is missing.
    static func recover(
        index: any VaultIndex, blobs: any BlobStore, configuration: VaultConfiguration, logger: Logger,
        reconciling: (@Sendable (_ shardsDone: Int) -> Void)?
    ) async throws(StoreError) -> RecoveryReport {
        let removedTemporaries = try await blobs.prepare()
        let marker = configuration.cleanShutdownMarker
        let wasClean = access(marker, F_OK) == 0
        let stoppedAt =
            wasClean
            ? (try? String(contentsOfFile: marker, encoding: .utf8)).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            : nil
        if wasClean {
            // The marker must not come back after a power cut, or the next start would skip
            // reconciliation after an unclean stop.
            try POSIX.unlinkIfPresent(marker)
            try POSIX.syncDirectory(configuration.stateDirectory)
        }
        var report = RecoveryReport(cleanStop: wasClean, temporariesRemoved: removedTemporaries)
        report.stoppedAt = stoppedAt
        if !wasClean {
            // The vault is not serving yet and its state directory is locked: no write is in
            // flight, so every blob no row names is an orphan, whatever its age. The index's
            // names are read once, packed; the blobs are listed a shard at a time.
            reconciling?(0)
            let (known, unreadable) = try await index.packedBlobNames()
            // A row the index cannot be read whole from may name any blob: remove none then
            // (the index is the source of truth, and only a whole reading of it says what is
            // an orphan). The damage is for an operator; `coffre admin verify` names the rows.
            report.unreadableRows = unreadable
            var reconciliation = BlobReconciliation(known: known)
            for shard in 0..<256 {
                for orphan in reconciliation.orphans(inShard: shard, listed: try await blobs.blobNames(inShard: shard)) {
                    if unreadable == 0 {
                        try await blobs.remove(orphan)
                        report.orphansRemoved += 1
                    } else {
                        report.orphansKept += 1
                    }
                }
                reconciling?(shard + 1)
            }
            reconciliation.finish()
            report.missingBlobs = reconciliation.missing
            // A purge killed between destroying a key and its checkpoint left the key's old
            // page in the WAL (and in the database file, until a checkpoint copies the new one
            // over it): nothing later is sure to checkpoint, so do it before serving.
            try await index.eraseDeletedRows()
        }
        logger.info(
            "vault recovered",
            metadata: CoffreEvent.recovery.metadata([
                "recovery.clean_stop": "\(wasClean)", "recovery.temporaries_removed": "\(removedTemporaries)",
                "recovery.orphans_removed": "\(report.orphansRemoved)", "recovery.missing_blobs": "\(report.missingBlobs)",
                "recovery.unreadable_rows": "\(report.unreadableRows)", "recovery.orphans_kept": "\(report.orphansKept)",
            ]))
        if report.unreadableRows > 0 {
            logger.error(
                "document rows of the index cannot be read (damage); blobs no readable row names were kept, not removed",
                metadata: CoffreEvent.integrityFailure.metadata([
                    "recovery.unreadable_rows": "\(report.unreadableRows)", "recovery.orphans_kept": "\(report.orphansKept)",
                ]))
        }
        if report.missingBlobs > 0 {
            logger.error(
                "documents recorded in the index have no blob; the vault needs an integrity check",
                metadata: CoffreEvent.integrityFailure.metadata(["recovery.missing_blobs": "\(report.missingBlobs)"]))
        }
        return report
    }

    /// Records a clean stop, and its second (real clock), so that the next start can skip the
    /// full reconciliation and knows when the last request was served (`RecoveryReport.stoppedAt`).
    public func markCleanShutdown() {
        let fd = Glibc.open(configuration.cleanShutdownMarker, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd >= 0 {
            let text = Array("\(time(nil))\n".utf8)
            _ = text.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
            fsync(fd)
            close(fd)
        }
    }

    static func crypto<T: ~Copyable>(_ body: () throws(CryptoError) -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch .arenaExhausted {
            throw StoreError(.busy, "too many requests in flight for the key arena; retry")
        } catch {
            throw StoreError(.integrity, "stored key material failed authentication (\(error))")
        }
    }

    func insHash(_ ins: INS) -> Data {
        Data(KeyedHash.digest(Array(ins.value.utf8), domain: "coffre/ins/v1", key: lookupKey))
    }
}

/// What the start-up recovery found and did.
public struct RecoveryReport: Sendable, Equatable {
    /// Whether the previous run recorded a clean stop (then blobs were not reconciled).
    public var cleanStop: Bool
    /// The second (real clock, since the epoch) of that clean stop, after its last request:
    /// nil after an unclean one.
    public var stoppedAt: Int64?
    /// Temporary files of interrupted writes, removed.
    public var temporariesRemoved: Int
    /// Blobs no index row names (linked before a crash, never acknowledged), removed.
    public var orphansRemoved = 0
    /// Rows whose blob was not found: those documents are lost, and `coffre admin verify`
    /// names them.
    public var missingBlobs = 0
    /// Rows whose id or blob version cannot be read (damage). With any, no blob is removed.
    public var unreadableRows = 0
    /// Blobs no readable row names, kept because some rows could not be read.
    public var orphansKept = 0
}

extension Vault {
    /// A cheap real check that the vault answers: one read through the index's reader pool.
    /// The health route (and so the systemd watchdog) uses it, so that a wedged index stops
    /// the daemon from reporting itself healthy.
    public func checkHealth() async throws(StoreError) {
        _ = try await index.vaultKey(purpose: Self.lookupKeyPurpose)
    }

    /// Key versions and arena usage, for operators; never personal data.
    func status() -> VaultStatus {
        let keys = masterKeys.current
        return VaultStatus(
            activeMasterKeyVersion: keys.activeVersion, installedMasterKeyVersions: keys.keys.keys.sorted(),
            arenaFree: arena.availableSlots, arenaSlots: arena.slotCount)
    }
}

/// What `coffre admin status` shows of the vault: never personal data.
public struct VaultStatus: Sendable, Equatable {
    public var activeMasterKeyVersion: UInt32
    public var installedMasterKeyVersions: [UInt32]
    /// Free and total slots of the locked-memory key arena.
    public var arenaFree: Int
    public var arenaSlots: Int
}
