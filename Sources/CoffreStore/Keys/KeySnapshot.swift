public import CoffreCrypto
import Synchronization

/// The master keys in force: the installed keys the vault may use (retired versions left out)
/// and the active version, which wraps every new dossier key.
///
/// A value: requests take one snapshot and use it throughout, so that a key operation landing
/// in the middle (a reload, the start of a rotation, a retirement) never mixes two states.
public struct MasterKeySnapshot: Sendable {
    /// Usable keys, by version.
    public let keys: [UInt32: SymmetricKey]
    /// The version that wraps new dossier keys; always present in `keys`.
    public let activeVersion: UInt32

    /// The active key.
    public var activeKey: SymmetricKey { keys[activeVersion]! }

    /// The key of `version`, if usable.
    public func key(version: UInt32) -> SymmetricKey? { keys[version] }
}

/// Holds the current `MasterKeySnapshot`, replaced as a whole by key operations.
///
/// Every replacement happens inside the index's write transaction that records the change, so
/// replacements are ordered the way SQLite's single writer orders the transactions.
final class MasterKeys: Sendable {
    private let state: Mutex<MasterKeySnapshot>

    init(_ snapshot: MasterKeySnapshot) { state = Mutex(snapshot) }

    var current: MasterKeySnapshot { state.withLock { $0 } }

    func replace(with snapshot: MasterKeySnapshot) { state.withLock { $0 = snapshot } }
}
