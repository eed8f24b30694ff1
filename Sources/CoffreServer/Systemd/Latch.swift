import Synchronization

/// A flag that is set once and stays set: "the server is listening", "the stop has begun".
/// Read by tasks that behave differently before or after (the watchdog).
public final class Latch: Sendable {
    private let value = Atomic<Bool>(false)

    /// A latch not yet set.
    public init() {}

    /// Whether it has been set.
    public var isSet: Bool { value.load(ordering: .acquiring) }

    /// Sets it, for good.
    public func set() { value.store(true, ordering: .releasing) }
}
