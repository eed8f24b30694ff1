import Synchronization

/// Raised once, when the graceful stop begins; read by tasks that behave differently while the
/// daemon drains (the watchdog).
public final class StopFlag: Sendable {
    private let raised = Atomic<Bool>(false)

    /// A flag not yet raised.
    public init() {}

    /// Whether the stop has begun.
    public var isRaised: Bool { raised.load(ordering: .acquiring) }

    /// Marks the stop as begun.
    public func raise() { raised.store(true, ordering: .releasing) }
}
