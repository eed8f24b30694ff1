/// `GET /v1/admin/keys` and the answer of every key operation: each master key version, what
/// it wraps, and the rotation in progress (or the last one). Never key material.
public struct MasterKeysView: Codable, Sendable, Equatable {
    /// The version that wraps new dossier keys.
    public var activeVersion: UInt32
    public var versions: [Version]
    public var rotation: Rotation?
    /// Nil until a purge has destroyed a dossier key.
    public var purges: Purges?

    public init(activeVersion: UInt32, versions: [Version], rotation: Rotation?, purges: Purges? = nil) {
        self.activeVersion = activeVersion
        self.versions = versions
        self.rotation = rotation
        self.purges = purges
    }

    /// When purges destroyed dossier keys. Backups made before `lastAt` still hold copies, which
    /// the versions recorded before it (`predatesLastPurge`) open.
    public struct Purges: Codable, Sendable, Equatable {
        public var lastAt: String
        public var dossiers: Int

        public init(lastAt: String, dossiers: Int) {
            self.lastAt = lastAt
            self.dossiers = dossiers
        }
    }

    public struct Version: Codable, Sendable, Equatable {
        public var version: UInt32
        /// `active`, `available` or `retired`.
        public var state: String
        /// Whether the daemon holds this key now.
        public var installed: Bool
        public var dossierKeys: Int
        public var archivedDossierKeys: Int
        public var vaultKeys: Int
        public var addedAt: String
        public var retiredAt: String?
        /// Recorded before the last purge: it may open that purge's dossier keys in older backups.
        public var predatesLastPurge: Bool

        public init(
            version: UInt32, state: String, installed: Bool, dossierKeys: Int, archivedDossierKeys: Int, vaultKeys: Int,
            addedAt: String, retiredAt: String?, predatesLastPurge: Bool = false
        ) {
            self.version = version
            self.state = state
            self.installed = installed
            self.dossierKeys = dossierKeys
            self.archivedDossierKeys = archivedDossierKeys
            self.vaultKeys = vaultKeys
            self.addedAt = addedAt
            self.retiredAt = retiredAt
            self.predatesLastPurge = predatesLastPurge
        }

        /// A daemon older than the purge record does not send `predatesLastPurge`: a new client
        /// still reads its answer (as false, as it has no `purges` either).
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            version = try container.decode(UInt32.self, forKey: .version)
            state = try container.decode(String.self, forKey: .state)
            installed = try container.decode(Bool.self, forKey: .installed)
            dossierKeys = try container.decode(Int.self, forKey: .dossierKeys)
            archivedDossierKeys = try container.decode(Int.self, forKey: .archivedDossierKeys)
            vaultKeys = try container.decode(Int.self, forKey: .vaultKeys)
            addedAt = try container.decode(String.self, forKey: .addedAt)
            retiredAt = try container.decodeIfPresent(String.self, forKey: .retiredAt)
            predatesLastPurge = try container.decodeIfPresent(Bool.self, forKey: .predatesLastPurge) ?? false
        }
    }

    public struct Rotation: Codable, Sendable, Equatable {
        public var targetVersion: UInt32
        /// `running` or `finished`.
        public var state: String
        public var startedAt: String
        public var finishedAt: String?
        /// Dossier keys rewrapped so far, of `total`.
        public var done: Int
        public var total: Int
        /// Keys that would not unwrap and were left as they were (`coffre admin verify` names them).
        public var failed: Int

        public init(
            targetVersion: UInt32, state: String, startedAt: String, finishedAt: String?, done: Int, total: Int, failed: Int
        ) {
            self.targetVersion = targetVersion
            self.state = state
            self.startedAt = startedAt
            self.finishedAt = finishedAt
            self.done = done
            self.total = total
            self.failed = failed
        }
    }
}

/// `POST /v1/admin/patients/{ins}/rekey`.
public struct RekeyRequest: Codable, Sendable {
    /// Also re-encrypt every blob under new document keys (reads and writes every byte).
    public var reencrypt: Bool?

    public init(reencrypt: Bool? = nil) { self.reencrypt = reencrypt }
}

/// The answer to a rekey.
public struct RekeyView: Codable, Sendable, Equatable {
    public var dossierId: String
    /// The dossier key's new generation.
    public var keyGeneration: UInt32
    /// Document keys now wrapped by the new dossier key.
    public var documentKeysRewrapped: Int
    /// Blobs re-encrypted under new document keys (0 without `reencrypt`).
    public var blobsReencrypted: Int

    public init(dossierId: String, keyGeneration: UInt32, documentKeysRewrapped: Int, blobsReencrypted: Int) {
        self.dossierId = dossierId
        self.keyGeneration = keyGeneration
        self.documentKeysRewrapped = documentKeysRewrapped
        self.blobsReencrypted = blobsReencrypted
    }
}
