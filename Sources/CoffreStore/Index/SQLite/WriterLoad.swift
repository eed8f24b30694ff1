import Synchronization

/// How many writes are queued or running on the index's writer connection.
final class WriterLoad: Sendable {
    private let count = Atomic<Int>(0)

    func enter() { count.add(1, ordering: .acquiringAndReleasing) }
    func leave() { count.subtract(1, ordering: .acquiringAndReleasing) }

    /// Enters if nothing else is queued or running.
    func enterIfIdle() -> Bool {
        count.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged
    }
}
