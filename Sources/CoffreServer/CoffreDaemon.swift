#if canImport(Glibc)
    import Glibc
#endif
import CoffreAPI
import CoffreCrypto
import CoffreDomain
import CoffreStore
import Hummingbird
public import Logging
import NIOPosix
public import ServiceLifecycle
import UnixSignals

/// The daemon's whole life: adopt or bind the socket, prepare development keys if asked, open
/// the vault (recovery included), report ready, serve until SIGTERM or SIGINT, then record a
/// clean stop.
///
/// Order matters to systemd: `READY=1` goes out only once keys are loaded, the index is open,
/// recovery is done and the socket accepts; clients that connect earlier wait in the socket's
/// queue (with socket activation, systemd's).
public enum CoffreDaemon {
    /// How much more time the reconciliation after a crash asks systemd for, and how often.
    static let reconciliationExtension: Duration = .seconds(90)
    static let reconciliationExtensionEvery: Duration = .seconds(5)

    /// Runs the daemon until it is stopped; throws (and logs why) if it cannot start.
    public static func run(configuration: ServerConfiguration, logger: Logger) async throws {
        do {
            try await buildApplication(configuration: configuration, logger: logger).run()
        } catch {
            logger.critical("coffred failed", metadata: CoffreEvent.failed.metadata(["error": "\(error)"]))
            throw error
        }
    }

    /// Everything the daemon runs, wired into one service group: adopts or binds the socket,
    /// prepares development keys if asked, opens the vault (recovery included), loads the trust
    /// directory and the habilitation matrix. Running the group serves until SIGTERM or SIGINT;
    /// its last service to stop signs the trace's end and records a clean stop.
    public static func buildApplication(configuration: ServerConfiguration, logger: Logger) async throws -> ServiceGroup {
        var configuration = configuration
        // Before anything secret or personal is in memory.
        try CoreDumps.forbid()
        let startSecond = Int64(time(nil))
        let notifier = SystemdNotifier()
        logger.info(
            "coffred starting",
            metadata: CoffreEvent.started.metadata([
                "coffred.version": "\(SystemRoutes.version)", "coffred.development": "\(configuration.developmentMode)",
            ]))
        notifier.status("starting: loading keys")
        let socket = try ListenSocket.fromSystemd(orBind: configuration.socketPath)
        if socket.path != configuration.socketPath {
            logger.notice(
                "systemd passed a socket at another path than configured; using it",
                metadata: ["socket.path": "\(socket.path)", "socket.configured": "\(configuration.socketPath)"])
            configuration.socketPath = socket.path
        }
        if let credentials = getenv("CREDENTIALS_DIRECTORY") {
            configuration.keyDirectories.append(String(cString: credentials))
        }
        if configuration.developmentMode {
            try DevelopmentSetup.prepare(configuration)
        }
        let arena = try SecureArena(slotCount: configuration.keyArenaSlots)
        if !arena.isLocked {
            logger.warning(
                "the key arena could not be locked in memory: keys may reach swap; raise LimitMEMLOCK / ulimit -l",
                metadata: ["arena.bytes": "\(configuration.keyArenaSlots * SecureArena.slotSize)"])
        }
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        do {
            return try await services(
                configuration: configuration, socket: socket, arena: arena, pool: pool, startSecond: startSecond, logger: logger)
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
    }

    private static func services(
        configuration: ServerConfiguration, socket: ListenSocket, arena: SecureArena, pool: NIOThreadPool, startSecond: Int64,
        logger: Logger
    ) async throws -> ServiceGroup {
        let notifier = SystemdNotifier()
        notifier.status("starting: opening the index and recovering")
        // The dossier's rules run on the vault clock: settable in development mode only.
        let developmentClock = configuration.developmentMode ? SettableClock(stateDirectory: configuration.stateDirectory) : nil
        let clock: any VaultClock = developmentClock ?? SystemClock()
        let extensions = Pacer(every: Self.reconciliationExtensionEvery)
        let vault = try await Vault.open(
            configuration: VaultConfiguration(
                stateDirectory: configuration.stateDirectory,
                keyDirectories: configuration.keyDirectories,
                maxDocumentSize: configuration.maxDocumentSize, retention: configuration.retention,
                traceSyncInterval: configuration.traceSyncInterval, traceAnchorPath: configuration.traceAnchorPath),
            io: BlockingIO(pool: pool), arena: arena, clock: clock, logger: logger,
            reconciling: { shardsDone in
                // After a crash every blob is compared with the index: about a second per
                // million documents, which a large enough vault could stretch past
                // TimeoutStartSec. So ask for more time at the beginning and then every few
                // seconds while it goes on: a large vault starts, a stuck one still times out.
                guard extensions.due() else { return }
                notifier.extendStart(
                    by: Self.reconciliationExtension,
                    status: "starting: reconciling blobs with the index after an unclean stop (\(shardsDone) of 256 shards)")
            })
        // Assertions an earlier run accepted were issued (unless ahead of its clock, which the
        // index records) no later than the second it served its last request in: the clean
        // stop's, or, after an unclean one, at worst this start's. From the next second on they
        // are refused (`AssertionReplayGuard`), and the daemon serves from then: after a clean
        // stop in an earlier second, at once.
        var firstServingSecond = vault.recovery.stoppedAt.map { max(startSecond, $0 + 1) } ?? startSecond + 1
        if firstServingSecond > startSecond + 1 {
            // The clock went back across the restart: waiting for it would stop the service.
            logger.warning(
                "the clock is behind the last clean stop; assertions the last run accepted near its stop are refused only if the index recorded them",
                metadata: ["stop.second": "\(vault.recovery.stoppedAt ?? 0)", "start.second": "\(startSecond)"])
            firstServingSecond = startSecond + 1
        }
        let trust = TrustHolder(
            directory: configuration.trustDirectory, developmentIssuer: configuration.developmentMode ? DevelopmentSetup.issuerID : nil)
        let untrusted = trust.reload()
        logger.info("trust directory loaded", metadata: ["trust.issuers": "\(trust.current.issuers.joined(separator: ","))"])
        for problem in untrusted {
            logger.error(
                "trust directory: a file was left out", metadata: CoffreEvent.reloadFailed.metadata(["trust.problem": "\(problem)"]))
        }
        let matrix = try MatrixLoader.load(path: configuration.habilitationMatrixPath)
        logger.info("habilitation matrix loaded", metadata: ["matrix.version": "\(matrix.version)"])
        let signals = await ReloadService.trapSignals()
        let keyRotation = KeyRotationService(
            vault: vault, batchSize: configuration.rotationBatchSize, pause: configuration.rotationPause, logger: logger)
        // Every operation on a dossier, whoever asks, goes through this one pipeline.
        let pipeline = OperationPipeline(vault: vault, policy: AccessPolicy(matrix: matrix))
        let refusals = RefusalRecorder(pipeline: pipeline, logger: logger)
        let router = buildRouter(
            configuration: configuration, pipeline: pipeline, refusals: refusals, trust: { trust.current },
            replayGuard: AssertionReplayGuard(startedAt: firstServingSecond), clock: clock,
            developmentClock: developmentClock, keyRotation: keyRotation, logger: logger)

        // The opening usually took that long already; otherwise a client minting an assertion
        // in the start's second would be refused.
        while Int64(time(nil)) < firstServingSecond { try await Task.sleep(for: .milliseconds(20)) }
        let listening = Latch()
        let stopping = Latch()
        let forced = Latch()
        let server = SocketServer(
            responder: router.buildResponder(), socket: socket, socketMode: configuration.socketMode,
            gracePeriod: configuration.shutdownGracePeriod, idleTimeout: configuration.idleTimeout,
            transfers: configuration.transfers, logger: logger,
            events: SocketServerEvents(
                listening: { socket in
                    listening.set()
                    logger.notice("coffred ready", metadata: CoffreEvent.ready.metadata(["socket.path": "\(socket.path)"]))
                    notifier.ready(status: "serving on \(socket.path)")
                },
                stopping: {
                    stopping.set()
                    logger.notice("coffred stopping: finishing requests in flight", metadata: CoffreEvent.stopping.metadata())
                    notifier.stopping(status: "stopping: finishing requests in flight")
                },
                forced: {
                    forced.set()
                    notifier.status("stopping: aborting requests still in flight")
                },
                refused: { problem in
                    // Refused before any route: counted like the router's anonymous refusals.
                    logger.notice(
                        "request refused", metadata: CoffreEvent.requestRefused.metadata(["error.code": "\(problem.code.rawValue)"]))
                    refusals.refused(AnonymousRefusal(action: "HTTP framing", errorCode: problem.code.rawValue))
                }))

        // Graceful shutdown runs in reverse order: the server drains first, then the refusals
        // of its last requests are written, the vault signs the trace's end, and the threads
        // stop; the watchdog last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let watchdog = Watchdog.fromSystemd(
            socketPath: socket.path, pool: pool, listening: listening, stopping: stopping, logger: logger)
        {
            services.append(.init(service: watchdog))
        }
        services.append(.init(service: ThreadPoolService(pool: pool)))
        services.append(.init(service: VaultService(vault: vault, forced: forced, logger: logger)))
        services.append(.init(service: ReloadService(signals: signals, trust: trust, pipeline: pipeline, logger: logger)))
        services.append(.init(service: keyRotation))
        services.append(.init(service: refusals))
        services.append(.init(service: server))
        return ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    }
}
