#if canImport(Glibc)
    import Glibc
#endif
import CoffreAPI
import CoffreDomain
public import CoffreStore
public import Logging
public import ServiceLifecycle
public import UnixSignals

/// Reloads what can change without a restart when the operator asks (`systemctl reload coffred`,
/// which sends SIGHUP): the trust directory and the master key files (a new key version becomes
/// usable, not active: `coffre admin keys rotate` does that).
public struct ReloadService: Service {
    let signals: UnixSignalsSequence
    let trust: TrustHolder
    let pipeline: OperationPipeline
    let logger: Logger

    /// Reacts to `signals` (created before the daemon reports ready, so that an early SIGHUP is
    /// never the default action, which would kill the process).
    public init(signals: UnixSignalsSequence, trust: TrustHolder, pipeline: OperationPipeline, logger: Logger) {
        self.signals = signals
        self.trust = trust
        self.pipeline = pipeline
        self.logger = logger
    }

    /// Trapping SIGHUP must happen before the daemon reports ready.
    public static func trapSignals() async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: .sighup)
    }

    /// Reloads on every SIGHUP until the graceful shutdown. Each part keeps what it had when
    /// its reload fails, and says so in the log and in systemd's status line.
    public func run() async {
        let notifier = SystemdNotifier()
        for await _ in signals.cancelOnGracefulShutdown() {
            notifier.reloading()
            var failures: [String] = []
            // Every valid issuer file is in force after it, and no other: a bad file keeps its own
            // issuer out, never a revoked one in.
            let untrusted = trust.reload()
            logger.notice(
                "trust directory reloaded",
                metadata: CoffreEvent.reload.metadata(["trust.issuers": "\(trust.current.issuers.joined(separator: ","))"]))
            for problem in untrusted {
                logger.error(
                    "trust directory: a file was left out", metadata: CoffreEvent.reloadFailed.metadata(["trust.problem": "\(problem)"]))
            }
            if !untrusted.isEmpty { failures.append("trust directory: \(untrusted.joined(separator: "; "))") }
            do {
                // A signal names no sender: the reload is the daemon's own user's, as systemd
                // runs `ExecReload` for the operator who asked.
                let keys = try await pipeline.reloadKeys(by: .operator(uid: getuid()))
                let installed = keys.versions.filter(\.installed).map { String($0.version) }.joined(separator: ",")
                logger.notice(
                    "master keys reloaded",
                    metadata: CoffreEvent.reload.metadata(["key.active": "\(keys.activeVersion)", "key.installed": "\(installed)"]))
            } catch {
                failures.append("master keys: \(error)")
                logger.error(
                    "master keys not reloaded; the keys in memory stay in force",
                    metadata: CoffreEvent.reloadFailed.metadata(["error": "\(error)"]))
            }
            let trusted = trust.current.issuers.count
            notifier.reloaded(
                status: failures.isEmpty
                    ? "serving; trust directory (\(trusted) issuers) and master keys reloaded"
                    : "serving; the last reload failed: \(failures.joined(separator: "; "))")
        }
    }
}
