import ArgumentParser
import CoffreServer
import Foundation
import CoffreDomain
import Logging
import NIOCore
import NIOPosix

/// The process's entry point: hands Swift concurrency's global executor to NIO's event loops
/// before any task runs, then parses the command line and runs the daemon.
///
/// Without it a request hops between threads at every `await`: from the event loop that read
/// it to Swift's cooperative pool for the handler, and back to the event loop for each write.
/// With it, the handler's tasks run on the event loops themselves, so most requests are served
/// on the thread that read them (perf showed a quarter of a fetch's CPU in the scheduler's
/// wake-ups). Nothing in the daemon may block a task for long: blocking file and SQLite work
/// goes to the I/O thread pool or GRDB's queues, as before.
@main
enum CoffredMain {
    static func main() async {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await Coffred.main()
    }
}

/// `coffred`: the vault daemon. Reads its configuration, sets up logging, runs the service.
struct Coffred: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coffred",
        abstract: "Coffre's vault daemon: encrypted health documents served on a Unix socket.")

    @Flag(help: "Development mode: own state directory, keys generated on first start.")
    var dev = false

    @Option(help: "State directory (default: /var/lib/coffre, or ./.coffre with --dev).")
    var stateDir: String?

    @Option(help: "Unix socket to listen on (default: /run/coffre/coffred.sock, or STATE/coffred.sock with --dev).")
    var socket: String?

    @Option(help: "Configuration file (JSON); flags given on the command line win.")
    var config: String?

    @Option(help: "Largest document accepted, in bytes.")
    var maxDocumentBytes: Int64?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Where logs go: auto (the journal when stderr is connected to it), journal, stderr.")
    var logTarget: String = "auto"

    @Option(help: "Seconds requests in flight may run after SIGTERM before they are aborted (default 30).")
    var shutdownGrace: Int?

    @Option(help: "Dossier keys rewrapped per transaction by a master key rotation (default 1000).")
    var rotationBatchSize: Int?

    @Option(help: "Milliseconds of rest between two rotation batches, to spare a busy disk (default 0).")
    var rotationPauseMs: Int?

    @Option(help: "Seconds a connection may go without a complete request before it is closed (default 30).")
    var idleTimeoutSeconds: Int?

    @Option(
        help: ArgumentHelp(
            "Milliseconds a read's or a refusal's trace entry may wait, written but unsynced, for the next sync of the index (default 10, at most 1000).",
            discussion: "0: every access waits for its own synced commit."))
    var traceSyncMs: Int?

    func run() async throws {
        // Everything the daemon creates (index, WAL, blobs, keys) is for its own user only; the
        // socket is opened up explicitly to its group after binding.
        umask(0o077)
        let file: ConfigurationFile
        let operatorGroupID: UInt32?
        let retentionUserID: UInt32?
        do throws(ConfigurationError) {
            file = try config.map { path throws(ConfigurationError) in try ConfigurationFile.load(path) } ?? ConfigurationFile()
            operatorGroupID = try file.operatorGroup.map { name throws(ConfigurationError) in try Self.groupID(name) }
            retentionUserID = try file.retentionUser.map { name throws(ConfigurationError) in try Self.userID(name) }
            if let milliseconds = file.traceSyncMilliseconds, !Self.traceSyncRange.contains(milliseconds) {
                throw ConfigurationError("traceSyncMilliseconds must be 0 to 1000 (got \(milliseconds))")
            }
        } catch {
            // EX_CONFIG: coffred.service does not restart on it (RestartPreventExitStatus=78),
            // and logging is not set up yet; systemd puts stderr in the journal.
            FileHandle.standardError.write(Data("coffred: \(error.message)\n".utf8))
            throw ExitCode(78)
        }
        let stateDirectory =
            stateDir ?? file.stateDirectory ?? (dev ? FileManager.default.currentDirectoryPath + "/.coffre" : "/var/lib/coffre")
        let configuration = ServerConfiguration(
            stateDirectory: absolute(stateDirectory),
            socketPath: (socket ?? file.socket).map(absolute),
            developmentMode: dev,
            keyDirectories: file.keyDirectories,
            trustDirectory: file.trustDirectory,
            maxDocumentSize: maxDocumentBytes ?? file.maxDocumentBytes ?? 4 << 30,
            operatorGroupID: operatorGroupID,
            shutdownGracePeriod: .seconds(shutdownGrace ?? file.shutdownGraceSeconds ?? 30),
            habilitationMatrixPath: file.habilitationMatrix,
            retentionUserID: retentionUserID,
            retention: RetentionRules(
                retention: (file.retentionDays ?? 3_652.5).milliseconds, deletionDelay: (file.deletionDelayDays ?? 90).milliseconds,
                oppositionWindow: (file.oppositionDays ?? 30).milliseconds),
            rotationBatchSize: rotationBatchSize ?? file.rotationBatchSize ?? 1_000,
            rotationPause: .milliseconds(rotationPauseMs ?? file.rotationPauseMilliseconds ?? 0),
            idleTimeout: .seconds(max(1, idleTimeoutSeconds ?? file.idleTimeoutSeconds ?? 30)),
            traceSyncInterval: .milliseconds(try traceSyncMilliseconds(traceSyncMs ?? file.traceSyncMilliseconds ?? 10)))
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        guard let target = JournalLogHandler.Target(rawValue: logTarget) else {
            throw ValidationError("unknown log target \(logTarget); use auto, journal or stderr")
        }
        // Every logger of the process (libraries included) goes to the same place.
        LoggingSystem.bootstrap { label in JournalLogHandler.handler(label: label, target: target) }
        var logger = Logger(label: "coffred")
        logger.logLevel = level
        try await CoffreDaemon.run(configuration: configuration, logger: logger)
    }

    /// How long a read's trace entry may stay unsynced, in milliseconds.
    private static let traceSyncRange = 0...1_000

    private func traceSyncMilliseconds(_ value: Int) throws -> Int {
        guard Self.traceSyncRange.contains(value) else {
            throw ValidationError("the trace sync interval must be 0 to 1000 ms (got \(value))")
        }
        return value
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

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
/// `traceSyncMilliseconds` (10: how long a read's or a refusal's trace entry may stay unsynced).
struct ConfigurationFile: Decodable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case stateDirectory, socket, keyDirectories, trustDirectory, maxDocumentBytes, operatorGroup, shutdownGraceSeconds
        case habilitationMatrix, retentionUser, retentionDays, deletionDelayDays, oppositionDays, rotationBatchSize
        case rotationPauseMilliseconds, idleTimeoutSeconds, traceSyncMilliseconds
    }

    var stateDirectory: String?
    var socket: String?
    var keyDirectories: [String]?
    var trustDirectory: String?
    var maxDocumentBytes: Int64?
    var operatorGroup: String?
    var shutdownGraceSeconds: Int?
    var habilitationMatrix: String?
    var retentionUser: String?
    var retentionDays: Double?
    var deletionDelayDays: Double?
    var oppositionDays: Double?
    var rotationBatchSize: Int?
    var rotationPauseMilliseconds: Int?
    var idleTimeoutSeconds: Int?
    var traceSyncMilliseconds: Int?

    static func load(_ path: String) throws(ConfigurationError) -> ConfigurationFile {
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
struct ConfigurationError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

extension Double {
    /// Days as milliseconds.
    var milliseconds: Int64 { Int64(self * 86_400_000) }
}
