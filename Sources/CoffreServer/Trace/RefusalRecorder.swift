import CoffreDomain
import CoffreStore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// Counts the requests refused before any access decision (no valid assertion, an unknown
/// route, a malformed request, broken HTTP framing) and writes them to the trace once per
/// interval, one entry per kind with its count: anyone who can reach the socket can send such
/// requests, and one entry each would let them grow the trace without bound.
///
/// It also throttles a connection that floods requests nobody vouched for (no valid assertion,
/// an unknown route): each connection has a `RefusalBudget` of 64 such refusals at once, earning
/// 64 more a second; past it, answers wait until the budget allows them (at most a second
/// each), so one connection gets at most about 64 of them answered a second, however fast it
/// sends. A client refused now and then never waits. A refused request that carried a valid
/// assertion is not slowed: assertions are single-use, so their issuers bound how many there
/// can be. Broken framing is counted only: the HTTP layer answers it and closes the connection,
/// so a flood of it costs a new connection each time.
final class RefusalRecorder: Service, Sendable {

    let pipeline: OperationPipeline
    let interval: Duration
    let logger: Logger
    private let tally = Mutex(RefusalTally())
    private let connections = Mutex([ObjectIdentifier: RefusalBudget]())

    init(pipeline: OperationPipeline, interval: Duration = .seconds(1), logger: Logger) {
        self.pipeline = pipeline
        self.interval = interval
        self.logger = logger
    }

    /// Counts a refusal made outside any connection's request (HTTP framing).
    func refused(_ refusal: AnonymousRefusal) {
        tally.withLock { $0.add(refusal) }
    }

    /// Counts a refusal on `channel` and says how long to hold its answer back.
    func refused(_ refusal: AnonymousRefusal, on channel: any Channel) -> Duration {
        refused(refusal)
        // A verified actor claimed a role: the request was vouched for.
        guard refusal.role == nil else { return .zero }
        let id = ObjectIdentifier(channel)
        let now = ContinuousClock.now
        let (pause, first) = connections.withLock { budgets in
            var budget = budgets[id] ?? RefusalBudget(at: now)
            let first = budgets[id] == nil
            let pause = budget.spend(at: now)
            budgets[id] = budget
            return (pause, first)
        }
        if first {
            // Forgotten with the connection: the table holds open connections only.
            channel.closeFuture.whenComplete { [self] _ in _ = connections.withLock { $0.removeValue(forKey: id) } }
        }
        return pause
    }

    /// Writes what was counted every `interval`, and once more at the stop (the server has
    /// drained its requests by then: it stops first).
    func run() async throws {
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                break
            }
            await flush()
        }
        await flush()
    }

    private func flush() async {
        let counted = tally.withLock { $0.drain() }
        guard !counted.isEmpty else { return }
        do {
            try await pipeline.recordRefusals(counted)
        } catch {
            logger.error(
                "trace write failed for refusals", metadata: ["refusals.kinds": "\(counted.count)", "error": "\(error)"])
        }
    }
}

/// How many refusals nobody vouched for one connection may have answered: `burst` at once, and
/// `perSecond` more each second (a token bucket). Pure: the time is passed in.
struct RefusalBudget: Sendable {
    static let burst = 64.0
    static let perSecond = 64.0
    /// The longest wait before one answer.
    static let longestPause: Duration = .seconds(1)

    private var tokens = burst
    private var updatedAt: ContinuousClock.Instant

    init(at now: ContinuousClock.Instant) { updatedAt = now }

    /// Spends one refusal at `now`; how long its answer must wait for the budget to allow it.
    mutating func spend(at now: ContinuousClock.Instant) -> Duration {
        let elapsed = now - updatedAt
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        tokens = min(Self.burst, tokens + max(0, seconds) * Self.perSecond)
        updatedAt = now
        tokens -= 1
        guard tokens < 0 else { return .zero }
        return min(.seconds(-tokens / Self.perSecond), Self.longestPause)
    }
}
