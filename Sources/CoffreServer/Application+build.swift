#if canImport(Glibc)
    import Glibc
#endif
import CoffreAPI
import CoffreDomain
import CoffreStore
import Hummingbird
import Logging

/// Builds the HTTP router over a ready vault: its middleware and routes. Whichever way the
/// socket comes (passed by systemd or bound by the daemon), requests go through this one router;
/// the daemon and any in-process test call this same function.
///
/// - Parameters:
///   - trust: the trust store in force, read once per person-level request (a reload on SIGHUP
///     swaps it).
///   - replayGuard: the assertions already used (one per daemon: each assertion is single-use).
///   - keyRotation: the background job `coffre admin keys rotate` wakes.
func buildRouter(
    configuration: ServerConfiguration,
    pipeline: OperationPipeline,
    refusals: RefusalRecorder,
    trust: @escaping @Sendable () -> TrustStore,
    replayGuard: AssertionReplayGuard,
    clock: any VaultClock,
    developmentClock: SettableClock? = nil,
    keyRotation: KeyRotationService,
    logger: Logger
) -> Router<CoffreRequestContext> {
    let vault = pipeline.vault
    let router = Router(context: CoffreRequestContext.self)
    router.middlewares.add(ProblemMiddleware(refusals: refusals, logger: logger))

    let system = SystemRoutes(
        vault: vault, pipeline: pipeline, developmentMode: configuration.developmentMode, clock: clock, developmentClock: developmentClock,
        logger: logger)
    system.addHealth(to: router)

    // Every operation on a dossier, whoever asks, goes through the one pipeline.
    let patients = router.group("v1/patients/:ins").add(middleware: AssertionMiddleware(trust: trust, replayGuard: replayGuard))
    DossierRoutes(pipeline: pipeline).add(to: patients)
    let transfers = TransferLimiter(
        total: configuration.transfers.maxInFlight(arenaSlots: configuration.keyArenaSlots),
        perCaller: configuration.transfers.maxPerCaller)
    DocumentRoutes(pipeline: pipeline, transfers: transfers).add(to: patients)
    TraceRoutes(pipeline: pipeline).add(to: patients)
    NotificationRoutes(pipeline: pipeline).add(to: patients)

    let admin = router.group("v1/admin").add(
        middleware: OperatorMiddleware(
            operatorGroupID: configuration.operatorGroupID,
            developmentUserID: configuration.developmentMode ? getuid() : nil))
    system.addAdmin(to: admin)
    KeyRoutes(
        vault: vault, pipeline: pipeline, rotation: keyRotation,
        developmentKeyDirectory: configuration.developmentMode ? configuration.keyDirectories.first : nil
    ).add(to: admin)
    let retention = RetentionRoutes(vault: vault, pipeline: pipeline, retentionUserID: configuration.retentionUserID)
    retention.addHolds(to: admin)
    // The retention job's own user may call the retention operations, and nothing else.
    let retentionGroup = router.group("v1/retention").add(
        middleware: OperatorMiddleware(
            operatorGroupID: configuration.operatorGroupID,
            developmentUserID: configuration.developmentMode ? getuid() : nil,
            alsoAllowed: configuration.retentionUserID))
    retention.addRetention(to: retentionGroup)
    return router
}
