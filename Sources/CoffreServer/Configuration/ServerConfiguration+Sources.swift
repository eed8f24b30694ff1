#if canImport(Glibc)
    import Glibc
#endif
import CoffreDomain

/// What `coffred`'s command line says; nil where it says nothing (the file or the default
/// decides).
public struct CommandLineSettings: Sendable {
    public var developmentMode: Bool
    public var stateDirectory: String?
    public var socket: String?
    public var maxDocumentBytes: Int64?
    public var shutdownGraceSeconds: Int?
    public var rotationBatchSize: Int?
    public var rotationPauseMilliseconds: Int?
    public var idleTimeoutSeconds: Int?
    public var traceSyncMilliseconds: Int?

    public init(
        developmentMode: Bool = false, stateDirectory: String? = nil, socket: String? = nil, maxDocumentBytes: Int64? = nil,
        shutdownGraceSeconds: Int? = nil, rotationBatchSize: Int? = nil, rotationPauseMilliseconds: Int? = nil,
        idleTimeoutSeconds: Int? = nil, traceSyncMilliseconds: Int? = nil
    ) {
        self.developmentMode = developmentMode
        self.stateDirectory = stateDirectory
        self.socket = socket
        self.maxDocumentBytes = maxDocumentBytes
        self.shutdownGraceSeconds = shutdownGraceSeconds
        self.rotationBatchSize = rotationBatchSize
        self.rotationPauseMilliseconds = rotationPauseMilliseconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.traceSyncMilliseconds = traceSyncMilliseconds
    }
}

extension ServerConfiguration {
    /// How long a read's trace entry may stay unsynced, in milliseconds.
    static let traceSyncRange = 0...1_000

    /// The configuration from the command line, then the configuration file, then the
    /// defaults; relative paths are taken from `currentDirectory`.
    /// - Throws: what to fix, when a value cannot be used (a user or group that does not
    ///   exist, a trace sync interval out of range).
    public init(commandLine: CommandLineSettings, file: ConfigurationFile, currentDirectory: String) throws(ConfigurationError) {
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : currentDirectory + "/" + path }
        let development = commandLine.developmentMode
        let traceSync = commandLine.traceSyncMilliseconds ?? file.traceSyncMilliseconds ?? 10
        guard Self.traceSyncRange.contains(traceSync) else {
            let key = commandLine.traceSyncMilliseconds == nil ? "traceSyncMilliseconds" : "--trace-sync-ms"
            throw ConfigurationError("\(key) must be 0 to 1000 (got \(traceSync))")
        }
        let stateDirectory = commandLine.stateDirectory ?? file.stateDirectory ?? (development ? ".coffre" : "/var/lib/coffre")
        let transfers = TransferLimits(
            minimumBytesPerSecond: file.minimumTransferBytesPerSecond ?? 1024,
            rateWindow: .seconds(file.transferRateWindowSeconds ?? 10), maxInFlight: file.maxTransfers,
            maxPerCaller: file.maxTransfersPerCaller ?? 16)
        // Bounded, so that no product of them overflows on the event loop.
        guard (0...(1 << 30)).contains(transfers.minimumBytesPerSecond),
            (Duration.seconds(1)...Duration.seconds(3_600)).contains(transfers.rateWindow),
            (1...1_000_000).contains(transfers.maxInFlight ?? 1), (1...1_000_000).contains(transfers.maxPerCaller)
        else {
            throw ConfigurationError(
                "minimumTransferBytesPerSecond must be 0 to 1073741824, transferRateWindowSeconds 1 to 3600, maxTransfers and maxTransfersPerCaller 1 to 1000000"
            )
        }
        self.init(
            stateDirectory: absolute(stateDirectory),
            socketPath: (commandLine.socket ?? file.socket).map(absolute),
            developmentMode: development,
            keyDirectories: file.keyDirectories,
            trustDirectory: file.trustDirectory,
            maxDocumentSize: commandLine.maxDocumentBytes ?? file.maxDocumentBytes ?? 4 << 30,
            operatorGroupID: try file.operatorGroup.map { name throws(ConfigurationError) in try Self.groupID(name) },
            shutdownGracePeriod: .seconds(commandLine.shutdownGraceSeconds ?? file.shutdownGraceSeconds ?? 30),
            habilitationMatrixPath: file.habilitationMatrix,
            retentionUserID: try file.retentionUser.map { name throws(ConfigurationError) in try Self.userID(name) },
            retention: RetentionRules(
                retention: Self.days(file.retentionDays ?? 3_652.5), deletionDelay: Self.days(file.deletionDelayDays ?? 90),
                oppositionWindow: Self.days(file.oppositionDays ?? 30)),
            rotationBatchSize: commandLine.rotationBatchSize ?? file.rotationBatchSize ?? 1_000,
            rotationPause: .milliseconds(commandLine.rotationPauseMilliseconds ?? file.rotationPauseMilliseconds ?? 0),
            idleTimeout: .seconds(max(1, commandLine.idleTimeoutSeconds ?? file.idleTimeoutSeconds ?? 30)),
            traceSyncInterval: .milliseconds(traceSync),
            traceAnchorPath: file.traceAnchorFile.map(absolute))
        self.transfers = transfers
    }

    private static func days(_ days: Double) -> Int64 { Int64(days * 86_400_000) }

    /// A name that is no user would leave the retention job refused every day, silently.
    private static func userID(_ name: String) throws(ConfigurationError) -> UInt32 {
        if let number = UInt32(name) { return number }
        guard let entry = getpwnam(name) else { throw ConfigurationError("retentionUser \"\(name)\" is no user on this system") }
        return entry.pointee.pw_uid
    }

    private static func groupID(_ name: String) throws(ConfigurationError) -> UInt32 {
        if let number = UInt32(name) { return number }
        guard let entry = getgrnam(name) else { throw ConfigurationError("operatorGroup \"\(name)\" is no group on this system") }
        return entry.pointee.gr_gid
    }
}
