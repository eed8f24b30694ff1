/// The time the dossier's rules run on, in milliseconds since the Unix epoch.
///
/// Passed in wherever time matters, never read from a global, so that development mode can
/// set it and tests can fix it. (Assertion lifetimes are checked against the real clock.)
public protocol VaultClock: Sendable {
    /// Now, in milliseconds since the Unix epoch.
    func now() -> Int64
}

/// A clock that always says the same time; for tests.
public struct FixedClock: VaultClock {
    public var milliseconds: Int64
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public func now() -> Int64 { milliseconds }
}
