#if canImport(Glibc)
    import Glibc
#endif
public import CoffreAPI
import CoffreCrypto
public import CoffreDomain
public import CoffreStore
public import Hummingbird
public import Logging
import NIOCore
import NIOPosix

/// Builds the HTTP application over a ready vault: the router, its middleware and routes.
/// The daemon and any in-process test call this same function.
public func buildApplication(
    configuration: ServerConfiguration,
    vault: Vault,
    trust: TrustStore,
    matrix: HabilitationMatrix,
    clock: any VaultClock,
    developmentClock: SettableClock? = nil,
    logger: Logger
) -> some ApplicationProtocol {
    let router = Router(context: CoffreRequestContext.self)
    router.middlewares.add(ProblemMiddleware(vault: vault, logger: logger))

    let system = SystemRoutes(
        vault: vault, developmentMode: configuration.developmentMode, clock: clock, developmentClock: developmentClock)
    system.addHealth(to: router)

    let policy = AccessPolicy(matrix: matrix)
    let notifier = Notifier(vault: vault, delays: policy.delays)
    let gatekeeper = Gatekeeper(policy: policy, vault: vault, notifier: notifier, clock: clock, logger: logger)
    let patients = router.group("v1/patients/:ins").add(middleware: AssertionMiddleware(trust: { trust }))
    DossierRoutes(vault: vault, gatekeeper: gatekeeper).add(to: patients)
    DocumentRoutes(vault: vault, gatekeeper: gatekeeper).add(to: patients)
    TraceRoutes(vault: vault, gatekeeper: gatekeeper).add(to: patients)
    NotificationRoutes(vault: vault, gatekeeper: gatekeeper).add(to: patients)

    let admin = router.group("v1/admin").add(
        middleware: OperatorMiddleware(
            operatorGroupID: configuration.operatorGroupID,
            developmentUserID: configuration.developmentMode ? getuid() : nil))
    system.addAdmin(to: admin)
    let retention = RetentionRoutes(vault: vault)
    retention.addHolds(to: admin)
    // The retention job's own user may call the retention operations, and nothing else.
    let retentionGroup = router.group("v1/retention").add(
        middleware: OperatorMiddleware(
            operatorGroupID: configuration.operatorGroupID,
            developmentUserID: configuration.developmentMode ? getuid() : nil,
            alsoAllowed: configuration.retentionUserID))
    retention.addRetention(to: retentionGroup)

    let socketPath = configuration.socketPath
    let socketMode = configuration.socketMode
    let systemd = SystemdNotifier()
    return Application(
        router: router,
        configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "coffred"),
        onServerRunning: { _ in
            if chmod(socketPath, mode_t(socketMode)) != 0 {
                logger.error("cannot set the socket's permissions", metadata: ["socket.path": "\(socketPath)"])
            }
            logger.info("coffred ready", metadata: ["socket.path": "\(socketPath)"])
            systemd.ready(status: "serving on \(socketPath)")
        },
        logger: logger)
}

/// The daemon's whole life: prepare development keys if asked, open the vault (recovery
/// included), serve until SIGTERM or SIGINT, then record a clean stop.
public enum CoffreDaemon {
    public static func run(configuration: ServerConfiguration, logger: Logger) async throws {
        var configuration = configuration
        if let credentials = getenv("CREDENTIALS_DIRECTORY") {
            configuration.keyDirectories.append(String(cString: credentials))
        }
        if configuration.developmentMode {
            try DevelopmentSetup.prepare(configuration)
        }
        // The dossier's rules run on the vault clock: settable in development mode only.
        let developmentClock = configuration.developmentMode ? SettableClock(stateDirectory: configuration.stateDirectory) : nil
        let clock: any VaultClock = developmentClock ?? SystemClock()
        let arena = try SecureArena(slotCount: configuration.keyArenaSlots)
        if !arena.isLocked {
            logger.warning(
                "the key arena could not be locked in memory: keys may reach swap; raise LimitMEMLOCK / ulimit -l",
                metadata: ["arena.bytes": "\(configuration.keyArenaSlots * SecureArena.slotSize)"])
        }
        let pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
        do {
            let vault = try await Vault.open(
                configuration: VaultConfiguration(
                    stateDirectory: configuration.stateDirectory,
                    keyDirectories: configuration.keyDirectories,
                    maxDocumentSize: configuration.maxDocumentSize, retention: configuration.retention),
                io: BlockingIO(pool: pool), arena: arena, clock: clock, logger: logger)
            let trust = try TrustDirectory.load(configuration.trustDirectory)
            logger.info("trust directory loaded", metadata: ["trust.issuers": "\(trust.issuers.joined(separator: ","))"])
            let matrix = try MatrixLoader.load(path: configuration.habilitationMatrixPath)
            logger.info("habilitation matrix loaded", metadata: ["matrix.version": "\(matrix.version)"])
            let app = buildApplication(
                configuration: configuration, vault: vault, trust: trust, matrix: matrix, clock: clock,
                developmentClock: developmentClock, logger: logger)
            try await app.runService()
            SystemdNotifier().stopping()
            do {
                try await vault.checkpointTrace()
            } catch {
                logger.error("could not sign the final trace checkpoint", metadata: ["error": "\(error)"])
            }
            vault.markCleanShutdown()
            logger.info("coffred stopped cleanly")
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
        try await pool.shutdownGracefully()
    }
}
