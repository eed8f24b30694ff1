import CoffreCrypto
import Dispatch
import Synchronization
import Testing

/// The background hasher: the digest of pieces hashed on another thread equals the one-pass
/// digest, and the caller waits once `maximumBacklog` bytes are waiting to be hashed.
@Suite struct BackgroundHasherTests {
    @Test func piecesHashedOnAQueueGiveTheDigestOfTheWhole() async {
        let queue = DispatchQueue(label: "test.hash")
        let hasher = BackgroundHasher { queue.async(execute: $0) }
        var whole: [UInt8] = []
        // Pieces of uneven sizes, more than twice the backlog in all.
        for size in [0, 1, 63, 64 << 10, 100_000, 1 << 20, 3, 1 << 20, 777_777, 1 << 20] {
            let piece = SecureRandom.bytes(size)
            whole += piece
            await hasher.update(piece, count: piece.count)
        }
        #expect(await hasher.finalize() == SHA256Hasher.hash(whole))
    }

    @Test func updateWaitsWhileTheBacklogIsFull() async throws {
        // A runner that holds its jobs until told to run them.
        let held = HeldJobs()
        let hasher = BackgroundHasher { held.add($0) }
        let piece = [UInt8](repeating: 7, count: BackgroundHasher.maximumBacklog / 2)
        await hasher.update(piece, count: piece.count)
        await hasher.update(piece, count: piece.count)
        #expect(held.count == 2)

        // The backlog is full: a third piece waits until half of it is hashed.
        let third = Task {
            await hasher.update(piece, count: piece.count)
            return held.count
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(held.count == 2, "a piece was queued past the backlog")
        held.runAll()
        #expect(await third.value == 1, "the third piece is queued once the first two are hashed")
        held.runAll()
        let digest = Task { await hasher.finalize() }
        // Its last job must be queued before it is run, or the digest would wait forever.
        for _ in 0..<6_000 where held.count == 0 { try await Task.sleep(for: .milliseconds(10)) }
        try #require(held.count == 1)
        held.runAll()
        #expect(await digest.value == SHA256Hasher.hash(piece + piece + piece))
    }
}

/// Jobs kept until `runAll`, in order, on the caller's thread.
private final class HeldJobs: Sendable {
    private let jobs = Mutex<[@Sendable () -> Void]>([])

    var count: Int { jobs.withLock { $0.count } }

    func add(_ job: @escaping @Sendable () -> Void) { jobs.withLock { $0.append(job) } }

    func runAll() {
        let taken = jobs.withLock { jobs in
            defer { jobs = [] }
            return jobs
        }
        for job in taken { job() }
    }
}
