public import CoffreAPI
import Synchronization

/// The trust store in force, replaced as a whole when the operator reloads (SIGHUP).
///
/// Requests read it once each, at their assertion check; a reload swaps in a new store built
/// entirely beforehand, so no request ever sees a half-loaded directory.
public final class TrustHolder: Sendable {
    private let store = Mutex(TrustStore())
    /// The directory the store is loaded from.
    public let directory: String
    /// The issuer trusted for every scope when it has no scope file (development mode).
    let developmentIssuer: String?

    /// A holder that trusts no one until `reload()`.
    public init(directory: String, developmentIssuer: String? = nil) {
        self.directory = directory
        self.developmentIssuer = developmentIssuer
    }

    /// The store in force now.
    public var current: TrustStore { store.withLock { $0 } }

    /// Reads the directory again and puts in force every issuer whose files are valid, and
    /// only those: an issuer whose file was removed or broken is no longer trusted. Returns the
    /// files left out, with why, for the log.
    @discardableResult
    public func reload() -> [String] {
        let loaded = TrustDirectory.load(directory, developmentIssuer: developmentIssuer)
        store.withLock { $0 = loaded.store }
        return loaded.problems
    }
}
