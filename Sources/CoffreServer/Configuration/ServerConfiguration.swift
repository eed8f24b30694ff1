public import CoffreDomain

/// Everything `coffred` needs to know to start. A plain value with defaults; built from flags and
/// an optional configuration file by `ServerConfiguration.init(options:)`.
///
/// Secrets are never part of it: only the directories where keys are found.
public struct ServerConfiguration: Sendable {
    /// State directory: the index, the blobs, and in development mode the keys.
    public var stateDirectory: String
    /// Path of the Unix socket to listen on.
    public var socketPath: String
    /// Permissions given to the socket file (0660: the daemon's user and its group).
    public var socketMode: UInt32
    /// Development mode: keys generated on first start, the daemon's own user is an operator.
    public var developmentMode: Bool
    /// Directories searched for master keys (`coffre-master-<N>`); `$CREDENTIALS_DIRECTORY` is
    /// appended automatically when systemd sets it.
    public var keyDirectories: [String]
    /// Directory of trusted assertion issuers: one `<issuer>.pub` file (hex Ed25519 key) each.
    public var trustDirectory: String
    /// Largest document accepted, in bytes.
    public var maxDocumentSize: Int64
    /// Group whose members (besides root) may call operator endpoints.
    public var operatorGroupID: UInt32?
    /// Slots in the locked-memory key arena (64 bytes each); bounds requests in flight.
    public var keyArenaSlots: Int
    /// How long requests in flight may run after SIGTERM before they are aborted; keep it below
    /// the unit's `TimeoutStopSec=`, after which systemd kills the process.
    public var shutdownGracePeriod: Duration
    /// The habilitation matrix file; nil for the default shipped with Coffre.
    public var habilitationMatrixPath: String?
    /// The retention job's user, allowed the retention operations only.
    public var retentionUserID: UInt32?
    /// Retention period, deletion delay and opposition window.
    public var retention: RetentionRules
    /// Dossier keys rewrapped per transaction by a master key rotation.
    public var rotationBatchSize: Int
    /// Rest between two rotation batches (none by default), to leave the disk to stores and
    /// fetches on a busy site.
    public var rotationPause: Duration
    /// How long a connection may go without sending a complete request head (idle between
    /// requests, or trickling its headers) before the daemon closes it.
    public var idleTimeout: Duration
    /// How long the trace entry of a read or a refusal may stay unsynced in the index's WAL
    /// (written, so safe from a crash of the daemon, not yet from a power cut); zero makes
    /// each wait for its own synced commit. At most one second.
    public var traceSyncInterval: Duration
    /// The trace's anchor file; nil for `trace.anchors` in the state directory.
    public var traceAnchorPath: String?
    /// The minimum rate of transfers and the caps on them.
    public var transfers = TransferLimits()

    /// Defaults for a production host (`/var/lib/coffre`, `/run/coffre/coffred.sock`).
    public init(
        stateDirectory: String = "/var/lib/coffre",
        socketPath: String? = nil,
        socketMode: UInt32 = 0o660,
        developmentMode: Bool = false,
        keyDirectories: [String]? = nil,
        trustDirectory: String? = nil,
        maxDocumentSize: Int64 = 4 << 30,
        operatorGroupID: UInt32? = nil,
        keyArenaSlots: Int = 8192,
        shutdownGracePeriod: Duration = .seconds(30),
        habilitationMatrixPath: String? = nil,
        retentionUserID: UInt32? = nil,
        retention: RetentionRules = .legal,
        rotationBatchSize: Int = 1_000,
        rotationPause: Duration = .zero,
        idleTimeout: Duration = .seconds(30),
        traceSyncInterval: Duration = .milliseconds(10),
        traceAnchorPath: String? = nil
    ) {
        self.traceAnchorPath = traceAnchorPath
        self.idleTimeout = idleTimeout
        self.traceSyncInterval = traceSyncInterval
        self.rotationBatchSize = rotationBatchSize
        self.rotationPause = rotationPause
        self.habilitationMatrixPath = habilitationMatrixPath
        self.retentionUserID = retentionUserID
        self.retention = retention
        self.stateDirectory = stateDirectory
        self.developmentMode = developmentMode
        self.socketPath = socketPath ?? (developmentMode ? stateDirectory + "/coffred.sock" : "/run/coffre/coffred.sock")
        self.socketMode = socketMode
        self.keyDirectories = keyDirectories ?? [developmentMode ? stateDirectory + "/keys" : "/etc/coffre/keys"]
        self.trustDirectory = trustDirectory ?? (developmentMode ? stateDirectory + "/trust" : "/etc/coffre/trust")
        self.maxDocumentSize = maxDocumentSize
        self.operatorGroupID = operatorGroupID
        self.keyArenaSlots = keyArenaSlots
        self.shutdownGracePeriod = shutdownGracePeriod
    }

    /// The development issuer's signing seed: in the state directory, never beside a socket
    /// that may be in a shared directory. `coffre` finds it beside the default development
    /// socket, or through `COFFRE_ISSUER_KEY`.
    public var developmentIssuerKeyPath: String {
        stateDirectory + "/dev-issuer.key"
    }
}
