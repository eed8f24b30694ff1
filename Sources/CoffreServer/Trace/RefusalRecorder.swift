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
/// It also slows a connection that keeps sending requests nobody vouched for (no valid
/// assertion, broken framing): past `freeRefusals` such refusals on one connection, each
/// further one is answered after a growing pause (10 ms more each time, up to a second), so a
/// flood from one connection costs the daemon little. A refused request that carried a valid
/// assertion is not slowed: assertions are single-use, so their issuers bound how many there
/// can be.
final class RefusalRecorder: Service, Sendable {
    /// Anonymous refusals a connection gets before its answers are held back.
    static let freeRefusals = 64
    /// The longest pause before a refusal's answer.
    static let longestPause: Duration = .seconds(1)

    let pipeline: OperationPipeline
    let interval: Duration
    let logger: Logger
    private let tally = Mutex(RefusalTally())
    private let connections = Mutex([ObjectIdentifier: Int]())

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
        let count = connections.withLock { counts in
            let count = (counts[id] ?? 0) + 1
            counts[id] = count
            return count
        }
        if count == 1 {
            // Forgotten with the connection: the table holds open connections only.
            channel.closeFuture.whenComplete { [self] _ in _ = connections.withLock { $0.removeValue(forKey: id) } }
        }
        guard count > Self.freeRefusals else { return .zero }
        return min(.milliseconds(10 * (count - Self.freeRefusals)), Self.longestPause)
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
