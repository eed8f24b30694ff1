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
        let configuration: ServerConfiguration
        do throws(ConfigurationError) {
            configuration = try ServerConfiguration(
                commandLine: CommandLineSettings(
                    developmentMode: dev, stateDirectory: stateDir, socket: socket, maxDocumentBytes: maxDocumentBytes,
                    shutdownGraceSeconds: shutdownGrace, rotationBatchSize: rotationBatchSize, rotationPauseMilliseconds: rotationPauseMs,
                    idleTimeoutSeconds: idleTimeoutSeconds, traceSyncMilliseconds: traceSyncMs),
                file: try config.map { path throws(ConfigurationError) in try ConfigurationFile.load(path) } ?? ConfigurationFile(),
                currentDirectory: FileManager.default.currentDirectoryPath)
        } catch {
            // EX_CONFIG: coffred.service does not restart on it (RestartPreventExitStatus=78),
            // and logging is not set up yet; systemd puts stderr in the journal.
            FileHandle.standardError.write(Data("coffred: \(error.message)\n".utf8))
            throw ExitCode(78)
        }
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
}
