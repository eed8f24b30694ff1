import Synchronization

/// Says yes at most once per interval: for progress lines (verify's stream) and for systemd's
/// start-up extensions (the reconciliation after a crash), which must come regularly but not
/// for every step.
final class Pacer: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)
    private let interval: Duration

    init(every interval: Duration) { self.interval = interval }

    /// True the first time, then once `interval` has passed since the last true.
    func due() -> Bool {
        last.withLock { last in
            let now = ContinuousClock.now
            if let previous = last, now - previous < interval { return false }
            last = now
            return true
        }
    }
}
