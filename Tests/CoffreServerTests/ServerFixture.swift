import CoffreAPI
import CoffreCrypto
import CoffreDomain
import CoffreStore
import CoffreTesting
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix

@testable import CoffreServer

/// The daemon's router over a real vault (SQLite, blob files, libsodium) in a temporary state
/// directory with development keys, on a clock the test sets; driven in-process through
/// Hummingbird's testing support, with no socket.
final class ServerFixture: Sendable {
    let directory: TemporaryDirectory
    let configuration: ServerConfiguration
    let pool: NIOThreadPool
    let clock: SettableClock
    let vault: Vault
    let pipeline: OperationPipeline
    let trust: TrustHolder
    let logger: Logger

    init() async throws {
        directory = try TemporaryDirectory(prefix: "coffre-server")
        configuration = ServerConfiguration(stateDirectory: directory.path, developmentMode: true)
        try DevelopmentSetup.prepare(configuration)
        pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        clock = SettableClock(stateDirectory: directory.path)
        try clock.set(to: 1_900_000_000_000)
        vault = try await Vault.open(
            configuration: VaultConfiguration(stateDirectory: directory.path, keyDirectories: configuration.keyDirectories),
            io: BlockingIO(pool: pool), arena: try SecureArena(slotCount: 256), clock: clock, logger: logger)
        trust = TrustHolder(directory: configuration.trustDirectory, developmentIssuer: DevelopmentSetup.issuerID)
        let untrusted = trust.reload()
        precondition(untrusted.isEmpty, "the development trust directory: \(untrusted)")
        pipeline = OperationPipeline(vault: vault, policy: AccessPolicy(matrix: try MatrixLoader.load(path: nil)))
        self.logger = logger
    }

    /// Runs `body` with a client of the daemon's router (built as the daemon builds it).
    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let trust = self.trust
        let router = buildRouter(
            configuration: configuration, pipeline: pipeline, refusals: RefusalRecorder(pipeline: pipeline, logger: logger),
            trust: { trust.current }, replayGuard: AssertionReplayGuard(startedAt: Int64(Date().timeIntervalSince1970) - 60),
            clock: clock, developmentClock: clock,
            keyRotation: KeyRotationService(vault: vault, batchSize: 10, pause: .zero, logger: logger), logger: logger)
        try await Application(router: router).test(.router, body)
    }

    /// The headers of a request acting for `subject` as `role` (one fresh assertion each).
    func person(_ subject: String, _ role: Role = .patient, profession: String? = nil, patient: String? = nil) throws -> HTTPFields {
        let now = Int64(Date().timeIntervalSince1970)
        var claims = AssertionClaims(
            iss: DevelopmentSetup.issuerID, sub: subject, role: role, software: "tests", iat: now, exp: now + 300,
            jti: UUID().uuidString)
        claims.profession = profession
        claims.patient = patient
        let token = try Identities.sign(claims, seedPath: configuration.developmentIssuerKeyPath)
        return [.authorization: "\(CoffreHeader.authorizationScheme) \(token)"]
    }

    deinit {
        try? pool.syncShutdownGracefully()
    }
}
