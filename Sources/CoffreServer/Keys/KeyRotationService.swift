public import CoffreStore
public import Logging
public import ServiceLifecycle

/// Carries out master key rotations in the background: resumes a rotation left unfinished by a
/// crash or a stop when the daemon starts, and starts on every `coffre admin keys rotate`.
///
/// Each batch is one transaction that moves the rotation's cursor with it, so stopping between
/// batches (a graceful shutdown) or dying inside one (SIGKILL, a power cut) loses nothing: the
/// next run starts after the last committed batch.
public struct KeyRotationService: Service {
    let vault: Vault
    let batchSize: Int
    let pause: Duration
    let logger: Logger
    private let requests: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    /// - Parameters:
    ///   - batchSize: dossier keys rewrapped per transaction (the writer is held that long).
    ///   - pause: rest between batches, to leave the disk to stores and fetches on a busy site.
    public init(vault: Vault, batchSize: Int, pause: Duration, logger: Logger) {
        self.vault = vault
        self.batchSize = max(batchSize, 1)
        self.pause = pause
        self.logger = logger
        (requests, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks the job to run (it looks for a pending rotation itself).
    public func wake() { continuation.yield() }

    public func run() async {
        wake()  // a rotation interrupted by the last stop resumes now
        for await _ in requests.cancelOnGracefulShutdown() {
            await rotateUntilFinished()
        }
    }

    private func rotateUntilFinished() async {
        var batches = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                guard let step = try await vault.rotateBatch(limit: batchSize), !step.finished else { return }
                batches += 1
                if batches == 1 {
                    logger.info("rewrapping dossier keys under the active master key", metadata: CoffreEvent.rotationStarted.metadata())
                }
                if pause > .zero { try await Task.sleep(for: pause) }
            } catch is CancellationError {
                return
            } catch {
                logger.error(
                    "key rotation stopped after an error; it resumes at the next start or `coffre admin keys rotate`",
                    metadata: CoffreEvent.integrityFailure.metadata(["error": "\(error)"]))
                return
            }
        }
    }
}
