import Foundation

/// The configuration file: a JSON object; every key optional, none unknown (a misspelt key
/// would otherwise be ignored without a word: `retentionUsers` left the retention job refused).
///
/// Keys: `stateDirectory`, `socket`, `keyDirectories` (array), `trustDirectory`,
/// `maxDocumentBytes`, `operatorGroup` (a group name or gid), `shutdownGraceSeconds` (30),
/// `habilitationMatrix` (a path), `retentionUser` (a user name or uid: the retention job's),
/// `retentionDays` (3652.5), `deletionDelayDays` (90), `oppositionDays` (30; current
/// regulation says 42), `rotationBatchSize` (1000 dossier keys per transaction),
/// `rotationPauseMilliseconds` (0: the rest between two rotation batches), `idleTimeoutSeconds`
/// (30: a connection without a complete request for that long is closed),
/// `traceSyncMilliseconds` (10: how long a read's or a refusal's trace entry may stay unsynced),
/// `traceAnchorFile` (`<stateDirectory>/trace.anchors`: the trace's anchors, outside the index),
/// `minimumTransferBytesPerSecond` (1024; 0: off) and `transferRateWindowSeconds` (10),
/// `maxTransfers` (a quarter of the key arena's slots) and `maxTransfersPerCaller` (16).
public struct ConfigurationFile: Decodable, Sendable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case stateDirectory, socket, keyDirectories, trustDirectory, maxDocumentBytes, operatorGroup, shutdownGraceSeconds
        case habilitationMatrix, retentionUser, retentionDays, deletionDelayDays, oppositionDays, rotationBatchSize
        case rotationPauseMilliseconds, idleTimeoutSeconds, traceSyncMilliseconds, traceAnchorFile
        case minimumTransferBytesPerSecond, transferRateWindowSeconds, maxTransfers, maxTransfersPerCaller
    }

    public var stateDirectory: String?
    public var socket: String?
    public var keyDirectories: [String]?
    public var trustDirectory: String?
    public var maxDocumentBytes: Int64?
    public var operatorGroup: String?
    public var shutdownGraceSeconds: Int?
    public var habilitationMatrix: String?
    public var retentionUser: String?
    public var retentionDays: Double?
    public var deletionDelayDays: Double?
    public var oppositionDays: Double?
    public var rotationBatchSize: Int?
    public var rotationPauseMilliseconds: Int?
    public var idleTimeoutSeconds: Int?
    public var traceSyncMilliseconds: Int?
    public var traceAnchorFile: String?
    public var minimumTransferBytesPerSecond: Int?
    public var transferRateWindowSeconds: Int?
    public var maxTransfers: Int?
    public var maxTransfersPerCaller: Int?

    /// No file: every key unset.
    public init() {}

    /// Reads and checks the file at `path`.
    public static func load(_ path: String) throws(ConfigurationError) -> ConfigurationFile {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            // "No such file or directory" rather than Foundation's whole NSError.
            let code = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? any Error).map { ($0 as NSError).code }
            throw ConfigurationError(
                "cannot read the configuration file \(path): " + (code.map { String(cString: strerror(Int32($0))) } ?? "\(error)"))
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ConfigurationError("\(path) is not a JSON object")
        }
        let known = Set(CodingKeys.allCases.map(\.stringValue))
        let unknown = object.keys.filter { !known.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw ConfigurationError(
                "\(path): unknown key(s) \(unknown.joined(separator: ", ")); the keys are "
                    + CodingKeys.allCases.map(\.stringValue).joined(separator: ", "))
        }
        do {
            return try JSONDecoder().decode(ConfigurationFile.self, from: data)
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
            let DecodingError.dataCorrupted(context)
        {
            // Foundation does not always say which key a number that does not fit came from (nor
            // what went wrong: "not valid JSON", of a file that parsed).
            let key = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw ConfigurationError(
                "\(path): " + (key.isEmpty ? "a value" : key) + " has the wrong type or a value out of range"
                    + (key.isEmpty ? " (a fraction for a whole number, or a number too large)" : ""))
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
    }
}

/// A configuration the daemon cannot start with: it says what to fix.
public struct ConfigurationError: Error, Sendable {
    /// What to fix, in one line.
    public let message: String
    init(_ message: String) { self.message = message }
}
