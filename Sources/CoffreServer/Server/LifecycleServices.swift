import CoffreStore
import Logging
import NIOPosix
import ServiceLifecycle

/// The vault's end of the daemon's life: once everything that writes to it has stopped (it
/// stops after them), signs a checkpoint at the trace's end and records a clean stop, unless
/// requests had to be aborted or the group was cancelled (a service failed): then the next
/// start reconciles blobs with the index rather than trust that every abort cleaned up after
/// itself.
struct VaultService: Service {
    let vault: Vault
    let forced: Latch
    let logger: Logger

    func run() async throws {
        var cancelled = false
        do {
            try await gracefulShutdown()
        } catch {
            cancelled = true
        }
        let clean = !cancelled && !forced.isSet
        do {
            // Sign the end of the chain, so that no entry can be cut from the tail unnoticed.
            try await vault.checkpointTrace()
        } catch {
            logger.error("could not sign the final trace checkpoint", metadata: ["error": "\(error)"])
        }
        if clean {
            vault.markCleanShutdown()
        }
        logger.notice("coffred stopped", metadata: CoffreEvent.stopped.metadata(["stop.clean": "\(clean)"]))
    }
}

/// The blocking-I/O threads (blob files), stopped once nothing uses them.
struct ThreadPoolService: Service {
    let pool: NIOThreadPool

    func run() async throws {
        try? await gracefulShutdown()
        try await pool.shutdownGracefully()
    }
}
