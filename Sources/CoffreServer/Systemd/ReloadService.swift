import CoffreAPI
import CoffreStore
public import Logging
public import ServiceLifecycle
public import UnixSignals

/// Reloads what can change without a restart when the operator asks (`systemctl reload coffred`,
/// which sends SIGHUP): today the trust directory.
///
/// Master keys are not reloaded: adding a key version while dossiers are open needs the
/// rotation machinery of the key-rotation issue; until then a new key needs a restart.
public struct ReloadService: Service {
    let signals: UnixSignalsSequence
    let trust: TrustHolder
    let logger: Logger

    /// Reacts to `signals` (created before the daemon reports ready, so that an early SIGHUP is
    /// never the default action, which would kill the process).
    public init(signals: UnixSignalsSequence, trust: TrustHolder, logger: Logger) {
        self.signals = signals
        self.trust = trust
        self.logger = logger
    }

    /// Trapping SIGHUP must happen before the daemon reports ready.
    public static func trapSignals() async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: .sighup)
    }

    /// Reloads on every SIGHUP until the graceful shutdown.
    public func run() async {
        let notifier = SystemdNotifier()
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.reloading()
            do {
                let store = try trust.reload()
                logger.notice(
                    "trust directory reloaded",
                    metadata: CoffreEvent.reload.metadata(["trust.issuers": "\(store.issuers.joined(separator: ","))"]))
                notifier.reloaded(status: "serving; trust directory reloaded (\(store.issuers.count) issuers)")
            } catch {
                logger.error(
                    "trust directory not reloaded; the previous issuers stay trusted",
                    metadata: CoffreEvent.reloadFailed.metadata(["error": "\(error)"]))
                notifier.reloaded(status: "serving; the last reload failed: \(error)")
            }
        }
    }
}
