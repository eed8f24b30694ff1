public import CoffreAPI
import Synchronization

/// The trust store in force, replaced as a whole when the operator reloads (SIGHUP).
///
/// Requests read it once each, at their assertion check; a reload swaps in a new store built
/// entirely beforehand, so no request ever sees a half-loaded directory.
public final class TrustHolder: Sendable {
    private let store: Mutex<TrustStore>
    /// The directory the store is loaded from.
    public let directory: String

    /// Loads `directory`; a malformed issuer file stops the start.
    public init(directory: String) throws(ServerError) {
        self.directory = directory
        store = Mutex(try TrustDirectory.load(directory))
    }

    /// The store in force now.
    public var current: TrustStore { store.withLock { $0 } }

    /// Reads the directory again and, only if every file is valid, puts the new store in force.
    /// On error the previous store stays in force.
    @discardableResult
    public func reload() throws(ServerError) -> TrustStore {
        let fresh = try TrustDirectory.load(directory)
        store.withLock { $0 = fresh }
        return fresh
    }
}
