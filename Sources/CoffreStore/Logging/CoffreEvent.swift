public import Logging

/// The kinds of event an operator may want to find in the journal, each with a stable
/// `MESSAGE_ID` (128 bits in hex, as `journalctl MESSAGE_ID=…` expects).
///
/// The ids are a contract with operators' filters and alerts: never change or reuse one; add a
/// new case for a new kind. docs/operations.md lists them all with what they mean.
public enum CoffreEvent: String, CaseIterable, Sendable {
    /// The process started and is opening the vault.
    case started
    /// Keys loaded, index open, recovery done, socket listening: `READY=1` was sent.
    case ready
    /// SIGTERM or SIGINT received: no new connections, requests in flight are finishing.
    case stopping
    /// The daemon stopped; `clean` says whether it recorded a clean stop.
    case stopped
    /// Start-up recovery ran (temporary files removed, orphans reconciled after a crash).
    case recovery
    /// A request was refused with a problem answer (4xx or 5xx).
    case requestRefused = "request_refused"
    /// Stored data failed authentication: a blob or key was damaged or tampered with.
    case integrityFailure = "integrity_failure"
    /// SIGHUP: the trust directory was reloaded.
    case reload
    /// A reload (or the start) left something out: a trust directory file, or the master
    /// keys (whose previous set stays in force).
    case reloadFailed = "reload_failed"
    /// The watchdog's health probe failed: the daemon stopped pinging systemd.
    case watchdogUnhealthy = "watchdog_unhealthy"
    /// Requests in flight did not finish within the grace period and were aborted.
    case shutdownForced = "shutdown_forced"
    /// The daemon failed to start or stopped on an error.
    case failed
    /// A master key rotation started (or resumed).
    case rotationStarted = "rotation_started"
    /// A master key rotation finished: every key is wrapped by the active version.
    case rotationFinished = "rotation_finished"
    /// A master key version was retired (or a retired one is still installed).
    case keyRetired = "key_retired"
    /// A dossier was given a new key (after a suspected compromise).
    case dossierRekeyed = "dossier_rekeyed"
    /// The index's WAL could not be synced for batched trace entries: each access now waits
    /// for its own synced commit, and the disk needs looking at.
    case traceSyncFailed = "trace_sync_failed"
    /// A trace checkpoint was anchored outside the index (seq, hash, signature): the journal's
    /// copy lets an auditor prove the index's trace was not cut or rolled back.
    case traceAnchored = "trace_anchored"

    /// The journal's `MESSAGE_ID` of this kind of event.
    public var messageID: String {
        switch self {
        case .started: "98b150cd5f5c4236b02a84d470450dfd"
        case .ready: "0ff9d1a9bbbe4019b086d34a57228c3c"
        case .stopping: "92c6649c60334d03a2eb136f3b3f9c39"
        case .stopped: "d871ab9acdb242f1b899975f42315fe7"
        case .recovery: "0a843c9221bb4f77b07ab19375ecc8c8"
        case .requestRefused: "8474e2d158d941a3a6b80abacec0179a"
        case .integrityFailure: "358a1b90537d4c8b920cf1fe76f61257"
        case .reload: "bf6297e56b2448bcb13ca9d7291a46bd"
        case .reloadFailed: "eb858e8c6c9f4799973844caa6c9afd9"
        case .watchdogUnhealthy: "9ac28817569b4e3b8726dab0d0550e40"
        case .shutdownForced: "e9768e62321e4ae4aca02fbe57d524bc"
        case .failed: "e8b98a2a1f9c46c0b732d8c3ea18944c"
        case .rotationStarted: "499346108e414a2399dcda862e7413ff"
        case .rotationFinished: "5df05da09aa64644bc92f96dbbdff30f"
        case .keyRetired: "3d6e039805374bf3a63be0b6a4cd82b8"
        case .dossierRekeyed: "db6b596e9b0942fc9aec58d434cbe2ec"
        case .traceSyncFailed: "164fb5536df341e181f384b3ea066602"
        case .traceAnchored: "350fc7bd29714a3fa1e9909e8a13cb37"
        }
    }

    /// The metadata key that carries the event kind; log handlers map it to `MESSAGE_ID`.
    public static let metadataKey = "event"

    /// `metadata` with this event's kind added.
    public func metadata(_ metadata: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = metadata
        metadata[Self.metadataKey] = .string(rawValue)
        return metadata
    }
}
