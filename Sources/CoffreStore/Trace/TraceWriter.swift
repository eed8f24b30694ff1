import CoffreCrypto
import CoffreDomain
import Foundation
import GRDB

/// Appends to the trace, batching concurrent appends into one transaction (group commit), and
/// signs a checkpoint every `checkpointInterval` entries.
///
/// An append returns only once its entry is committed: callers write the trace before they act,
/// so an access that cannot be traced is refused (fail closed). The chain state (last sequence
/// number and hash) advances only when a batch commits. A batch whose every entry is
/// `TraceDurability.batched` commits without syncing the WAL, and `syncer` syncs it within a
/// few milliseconds; any other batch syncs at its commit.
actor TraceWriter {
    /// One entry waiting for its batch, before its sequence number and hash are known.
    struct Pending {
        var at: Int64
        var dossierID: String?
        var action: String
        var outcome: String
        var detail: String?
        /// Seals the personal detail once the sequence number (part of its associated data) is known.
        var seal: @Sendable (Int64) throws(StoreError) -> Data?
        /// The change this entry allows, written in the entry's transaction (see `append`).
        var change: (@Sendable (Database) throws -> Void)?
        var durability: TraceDurability
        var continuation: CheckedContinuation<Int64, any Error>
    }

    static let checkpointInterval: Int64 = 64
    static let genesis = Data(repeating: 0, count: 32)

    private let index: VaultIndex
    let signer: TraceSigner
    private let clock: any VaultClock
    nonisolated let syncer: TraceSyncer
    private var lastSeq: Int64
    private var lastHash: Data
    private var lastCheckpointSeq: Int64
    private var pending: [Pending] = []
    private var flushing = false

    init(index: VaultIndex, signer: TraceSigner, clock: any VaultClock, syncer: TraceSyncer) async throws(StoreError) {
        self.index = index
        self.signer = signer
        self.clock = clock
        self.syncer = syncer
        let tail = try await index.traceTail()
        // Far beyond any real trace (a million entries a second for 146,000 years): a damaged
        // index. Appending would overflow the sequence; refuse to open rather than stop there.
        if let last = tail.last?.seq, last >= Int64.max / 2 {
            throw StoreError(.integrity, "the trace's last entry has sequence number \(last), out of range: the index is damaged")
        }
        lastSeq = tail.last?.seq ?? 0
        lastHash = tail.last?.hash ?? Self.genesis
        lastCheckpointSeq = tail.checkpoint?.seq ?? 0
    }

    /// Appends an entry and returns its sequence number once it is committed, and durable as
    /// `durability` says (a change makes it `beforeReturning`).
    ///
    /// With `change`, the change the entry allows is written in the same transaction (and so
    /// group-committed with other appends): the decision and what it allowed become durable
    /// together, or neither does. A change that fails (a conflict) is rolled back alone and
    /// its error thrown; its entry is kept, as a decision traced before an action that failed.
    func append(
        dossierID: String?, action: String, outcome: String, detail: String?,
        seal: @Sendable @escaping (Int64) throws(StoreError) -> Data?,
        change: (@Sendable (Database) throws -> Void)? = nil, durability: TraceDurability = .beforeReturning
    ) async throws -> Int64 {
        let at = clock.now()
        return try await withCheckedThrowingContinuation { continuation in
            pending.append(
                Pending(
                    at: at, dossierID: dossierID, action: action, outcome: outcome, detail: detail, seal: seal, change: change,
                    durability: change == nil ? durability : .beforeReturning, continuation: continuation))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    /// Signs a checkpoint at the current end of the chain (at a clean stop, and on demand).
    func checkpointNow() async throws(StoreError) {
        guard lastSeq > lastCheckpointSeq else { return }
        // Capture before the await: a flush may advance the chain meanwhile (actor reentrancy).
        let checkpoint = makeCheckpoint(seq: lastSeq, hash: lastHash)
        try await index.appendTrace([], checkpoint: checkpoint)
        lastCheckpointSeq = max(lastCheckpointSeq, checkpoint.seq)
    }

    /// Makes every entry committed so far durable (at a clean stop, after the checkpoint).
    func syncNow() async {
        await syncer.syncNow()
    }

    /// The checkpoint public key, for verifiers.
    nonisolated var publicKey: Ed25519PublicKey { signer.publicKey }

    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            var seq = lastSeq
            var hash = lastHash
            var rows: [TraceEntryRow] = []
            var failure: (any Error)? = nil
            for item in batch {
                seq += 1
                do {
                    var row = TraceEntryRow(
                        seq: seq, at: item.at, dossierId: item.dossierID, action: item.action, outcome: item.outcome,
                        detail: item.detail, sealed: try item.seal(seq), hash: Data())
                    row.hash = Data(SHA256Hasher.hash(Array(hash) + row.chainedBytes))
                    hash = row.hash
                    rows.append(row)
                } catch {
                    failure = error
                    break
                }
            }
            var checkpoint: TraceCheckpointRow? = nil
            if failure == nil, seq - lastCheckpointSeq >= Self.checkpointInterval {
                checkpoint = makeCheckpoint(seq: seq, hash: hash)
            }
            var changeFailures: [Int: any Error] = [:]
            // Decided per batch: one entry that must be durable at once syncs the others too.
            let synced = !syncer.batches || batch.contains { $0.durability == .beforeReturning }
            var inline = false
            if failure == nil {
                do {
                    // Reads and refusals, with the writer idle: committed on this thread.
                    inline = try !synced && index.appendTraceUnsyncedIfIdle(rows, checkpoint: checkpoint)
                    if !inline {
                        changeFailures = try await index.appendTrace(
                            rows, checkpoint: checkpoint, changes: batch.map(\.change), synced: synced)
                    }
                } catch {
                    failure = error
                }
            }
            if failure == nil && !synced { syncer.entriesWritten(checkpointSkipped: inline) }
            if let failure {
                for item in batch { item.continuation.resume(throwing: failure) }
                continue
            }
            lastSeq = seq
            lastHash = hash
            if let checkpoint { lastCheckpointSeq = checkpoint.seq }
            for (index, (item, row)) in zip(batch, rows).enumerated() {
                if let changeFailure = changeFailures[index] {
                    item.continuation.resume(throwing: ChangeFailed(error: changeFailure))
                } else {
                    item.continuation.resume(returning: row.seq)
                }
            }
        }
        flushing = false
    }

    /// The change an appended entry allowed failed; the entry itself was written.
    struct ChangeFailed: Error {
        let error: any Error
    }

    private func makeCheckpoint(seq: Int64, hash: Data) -> TraceCheckpointRow {
        var checkpoint = TraceCheckpointRow(seq: seq, hash: hash, at: clock.now(), signature: Data())
        checkpoint.signature = Data(signer.key.sign(checkpoint.signedBytes))
        return checkpoint
    }
}
