/// What operators see of the master keys: each version, what it wraps, and the rotation.
/// Never key material.
public struct MasterKeyStatus: Sendable, Equatable {
    /// One master key version.
    public struct Version: Sendable, Equatable {
        public var version: UInt32
        /// `active` (wraps new dossier keys), `available` (installed, usable, not active) or
        /// `retired` (no longer used; its file can be destroyed).
        public var state: String
        /// Whether the daemon holds this key now.
        public var installed: Bool
        /// Dossier keys it wraps.
        public var dossierKeys: Int
        /// Earlier generations of rekeyed dossiers' keys it wraps.
        public var archivedDossierKeys: Int
        /// Keys of the vault itself (INS look-up, trace signing) it wraps.
        public var vaultKeys: Int
        public var addedAt: Int64
        public var retiredAt: Int64?
        /// Recorded before the last purge: backups made before that purge hold destroyed dossier
        /// keys, which this version may open. The purge reaches those backups once every copy of
        /// every such version is destroyed.
        public var predatesLastPurge: Bool

        /// Everything this version still wraps.
        public var wrappedKeys: Int { dossierKeys + archivedDossierKeys + vaultKeys }
    }

    /// The rotation in progress, or the last one.
    public struct Rotation: Sendable, Equatable {
        public var targetVersion: UInt32
        public var startedAt: Int64
        public var finishedAt: Int64?
        /// Dossier keys rewrapped so far.
        public var done: Int
        /// Dossier keys the rotation had to rewrap (grows if stores raced its start).
        public var total: Int
        /// Keys that would not unwrap and were left as they were (see `coffre admin verify`).
        public var failed: Int
    }

    /// When purges destroyed dossier keys: the last one, and how many in all.
    public struct Purges: Sendable, Equatable {
        public var lastAt: Int64
        public var dossiers: Int
    }

    public var activeVersion: UInt32
    public var versions: [Version]
    public var rotation: Rotation?
    /// Nil until a purge has destroyed a dossier key.
    public var purges: Purges?
}
