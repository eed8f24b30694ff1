public import CoffreDomain

/// Where the vault keeps its state and how large a document may be.
public struct VaultConfiguration: Sendable {
    /// The state directory: `index.sqlite` (+ WAL) and `blobs/`.
    public var stateDirectory: String
    /// Directories searched for `coffre-master-<N>` files, in order (later wins).
    public var keyDirectories: [String]
    /// Largest document accepted, in bytes.
    public var maxDocumentSize: Int64
    /// Plaintext bytes per encrypted record.
    public var chunkSize: Int
    /// Retention period, deletion delay and opposition window (the legal values by default).
    public var retention: RetentionRules
    /// How long a read's or a refusal's trace entry may stay unsynced in the WAL
    /// (`TraceDurability.batched`); zero makes each wait for its own synced commit.
    public var traceSyncInterval: Duration
    /// The trace's anchor file (`TraceAnchors`): outside the index, by default beside it. A site
    /// may put it on another file system, or make it append-only (`chattr +a`).
    public var traceAnchorPath: String

    public static let defaultTraceSyncInterval: Duration = .milliseconds(10)

    public init(
        stateDirectory: String,
        keyDirectories: [String],
        maxDocumentSize: Int64 = 4 << 30,
        chunkSize: Int = 64 * 1024,
        retention: RetentionRules = .legal,
        traceSyncInterval: Duration = Self.defaultTraceSyncInterval,
        traceAnchorPath: String? = nil
    ) {
        self.traceAnchorPath = traceAnchorPath ?? stateDirectory + "/trace.anchors"
        self.retention = retention
        self.traceSyncInterval = traceSyncInterval
        self.stateDirectory = stateDirectory
        self.keyDirectories = keyDirectories
        self.maxDocumentSize = maxDocumentSize
        self.chunkSize = chunkSize
    }

    var indexPath: String { stateDirectory + "/index.sqlite" }
    var blobDirectory: String { stateDirectory + "/blobs" }
    var cleanShutdownMarker: String { stateDirectory + "/clean-shutdown" }
}
