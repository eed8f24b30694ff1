import CoffreCrypto
import CoffreDomain
import Foundation

/// Appends to the trace, batching concurrent appends into one transaction (group commit), and
/// signs a checkpoint at every entry whose seq is a multiple of `checkpointInterval`, which the
/// anchors then copy outside the index.
///
/// Each entry's hash is a MAC under the vault's chain key of the one before and of its own
/// columns (`TraceKeys`): without the master key, no one can make a changed entry fit the chain.
/// Checkpoints sit at fixed seqs, so a missing one is itself a failure.
///
/// An append returns only once its entry is committed: callers write the trace before they act,
/// so an access that cannot be traced is refused (fail closed). Each batch reads the chain's
/// tail (last sequence number and hash, last checkpoint) inside its own write transaction, so
/// that whoever else appends to the same index, in this process or another, the chain stays
/// one chain. A batch whose every entry is `TraceDurability.batched` commits without waiting
/// for the disk, and the index makes it durable within a few milliseconds; any other batch is
/// durable at its commit.
actor TraceWriter {
    /// An entry as decided, before its place in the chain is known.
    struct Entry: Sendable {
        var dossierID: String?
        var action: String
        var outcome: String
        var detail: String?
        /// Seals the personal detail once the sequence number (part of its associated data) is known.
        var seal: @Sendable (Int64) throws(StoreError) -> Data?
    }

    /// The change an entry allows, written in the entry's transaction (see `append`).
    typealias Change = @Sendable (any IndexTransaction) throws -> Void

    /// What the batch's transaction needs of one append.
    private struct Item: Sendable {
        var at: Int64
        var entry: Entry
        var change: Change?
        /// The single-use assertion the operation came with, recorded with its entry.
        var assertion: AssertionUse?
    }

    private struct Pending {
        var item: Item
        var durability: TraceDurability
        var continuation: CheckedContinuation<Int64, any Error>
    }

    /// What became of one append in its batch's transaction.
    private enum Appended: Sendable {
        case entry(Int64)
        /// The entry was written; the change it allowed was not.
        case changeFailed(any Error)
        /// Neither: the change found the facts of its decision changed.
        case stale
        /// Neither: the index had recorded the operation's assertion already.
        case replayed
    }

    static let checkpointInterval: Int64 = 64
    static let genesis = Data(repeating: 0, count: 32)

    private let index: any VaultIndex
    let keys: TraceKeys
    let anchors: TraceAnchors
    private let clock: any VaultClock
    private var pending: [Pending] = []
    private var flushing = false

    /// The chain's end as this writer last committed it, when it is the index's only writer:
    /// each batch checks that the index still ends there, so entries removed (or added) behind
    /// the daemon's back while it runs stop the trace instead of being written over.
    private var lastWritten: ChainEnd?

    /// - Parameter soleWriter: whether this writer alone appends to the index's trace (one
    ///   daemon per state directory, `StateLock`); false for daemons sharing an engine.
    init(
        index: any VaultIndex, keys: TraceKeys, anchors: TraceAnchors, clock: any VaultClock, soleWriter: Bool = true
    ) async throws(StoreError) {
        self.index = index
        self.keys = keys
        self.anchors = anchors
        self.clock = clock
        // Checked at start, so that a damaged index stops the daemon rather than every access.
        let tail = try await index.read("read the trace") { try Self.chainTail($0) }
        lastWritten = soleWriter ? ChainEnd(seq: tail.seq, hash: tail.hash) : nil
    }

    /// Appends an entry and returns its sequence number once it is committed, and durable as
    /// `durability` says (a change makes it `beforeReturning`).
    ///
    /// With `change`, the change the entry allows is written in the same transaction (and so
    /// group-committed with other appends): the decision and what it allowed become durable
    /// together, or neither does. A change that fails (a conflict) is rolled back alone and
    /// its error thrown as `ChangeFailed`; its entry is kept, as a decision traced before an
    /// action that failed. A change that throws `StaleDecision` is rolled back with its entry.
    /// With `assertion`, its use is recorded in the same transaction, until the assertion
    /// expires: an assertion the index has recorded already (this daemon before a restart, or
    /// another daemon sharing the index) writes nothing and throws `Replayed`.
    func append(
        _ entry: Entry, change: Change? = nil, assertion: AssertionUse? = nil, durability: TraceDurability = .beforeReturning
    ) async throws -> Int64 {
        let item = Item(at: clock.now(), entry: entry, change: change, assertion: assertion)
        return try await withCheckedThrowingContinuation { continuation in
            pending.append(
                Pending(item: item, durability: change == nil ? durability : .beforeReturning, continuation: continuation))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    /// Signs a checkpoint at the current end of the chain (at a clean stop, and on demand).
    func checkpointNow() async throws(StoreError) {
        let (keys, clock, expected) = (self.keys, self.clock, self.lastWritten)
        let checkpoint = try await index.write("sign a trace checkpoint") { transaction -> TraceCheckpointRow? in
            let tail = try Self.chainTail(transaction)
            try Self.check(tail, expected)
            guard tail.seq > tail.checkpointSeq else { return nil }
            let checkpoint = keys.checkpoint(seq: tail.seq, hash: tail.hash, at: clock.now())
            try transaction.append(traceEntries: [], checkpoints: [checkpoint])
            return checkpoint
        }
        if let checkpoint { await anchors.submit([checkpoint]) }
    }

    /// Makes every entry committed so far durable (at a clean stop, after the checkpoint).
    func syncNow() async {
        await index.sync()
    }

    /// The checkpoint public key, for verifiers.
    nonisolated var publicKey: Ed25519PublicKey { keys.publicKey }

    private func flush() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            let items = batch.map(\.item)
            let (keys, clock) = (self.keys, self.clock)
            let expected = lastWritten
            let body: @Sendable (any IndexTransaction) throws -> ([Appended], [TraceCheckpointRow], ChainEnd) = { transaction in
                try Self.append(items, in: transaction, keys, clock, expecting: expected)
            }
            // Decided per batch: one entry that must be durable at once makes the others so too.
            let durability: TraceDurability = batch.contains { $0.durability == .beforeReturning } ? .beforeReturning : .batched
            do {
                // Without its anchors, the trace could be cut unnoticed: fail closed.
                guard !anchors.isFailing else {
                    throw StoreError(.io, "the trace's anchor file cannot be written: the trace takes no entry until it can")
                }
                let written: ([Appended], [TraceCheckpointRow], ChainEnd)
                // Reads and refusals, with the writer idle: committed on this thread.
                if durability == .batched, let idle = try index.writeBatchedIfIdle("write the trace", body) {
                    written = idle
                } else {
                    written = try await index.write("write the trace", durability: durability, body)
                }
                let (results, checkpoints, end) = written
                if lastWritten != nil { lastWritten = end }
                for (pending, result) in zip(batch, results) {
                    switch result {
                    case .entry(let seq): pending.continuation.resume(returning: seq)
                    case .changeFailed(let error): pending.continuation.resume(throwing: ChangeFailed(error: error))
                    case .stale: pending.continuation.resume(throwing: StaleDecision())
                    case .replayed: pending.continuation.resume(throwing: Replayed())
                    }
                }
                // After the answers: anchoring is off the request path.
                if !checkpoints.isEmpty { await anchors.submit(checkpoints) }
            } catch {
                for pending in batch { pending.continuation.resume(throwing: error) }
            }
        }
        flushing = false
    }

    /// Runs the batch's changes, each in a savepoint of its own, then chains and inserts the
    /// entries of those that are kept, and the checkpoints due at their seqs.
    private static func append(
        _ items: [Item], in transaction: any IndexTransaction, _ keys: TraceKeys, _ clock: any VaultClock, expecting expected: ChainEnd?
    ) throws -> ([Appended], [TraceCheckpointRow], ChainEnd) {
        let tail = try chainTail(transaction)
        try check(tail, expected)
        var (seq, hash) = (tail.seq, tail.hash)
        var rows: [TraceEntryRow] = []
        var checkpoints: [TraceCheckpointRow] = []
        var results: [Appended] = []
        // Assertions are forgotten by the real clock (their lifetimes are), never the vault's.
        if items.contains(where: { $0.assertion != nil }) { try transaction.forgetAssertions(through: Int64(Date().timeIntervalSince1970)) }
        for item in items {
            var failure: (any Error)? = nil
            if item.change == nil, let assertion = item.assertion {
                // Nothing else of the item is written before its entry: no savepoint needed.
                guard try transaction.admit(assertion: Data(assertion.fingerprint), forgettableAt: assertion.forgettableAt) else {
                    results.append(.replayed)
                    continue
                }
            } else if item.change != nil {
                do {
                    let admitted = try transaction.inSavepoint {
                        if let assertion = item.assertion,
                            try !transaction.admit(
                                assertion: Data(assertion.fingerprint), forgettableAt: assertion.forgettableAt)
                        {
                            return false
                        }
                        try item.change?(transaction)
                        return true
                    }
                    if !admitted {
                        results.append(.replayed)
                        continue
                    }
                } catch let error as TransactionFailed {
                    throw error  // the transaction itself is failing: nothing commits
                } catch is StaleDecision {
                    results.append(.stale)
                    continue
                } catch {
                    failure = error
                }
            }
            seq += 1
            let entry = item.entry
            var row = TraceEntryRow(
                seq: seq, at: item.at, dossierId: entry.dossierID, action: entry.action, outcome: entry.outcome, detail: entry.detail,
                sealed: try entry.seal(seq), hash: Data())
            // What the change left the dossier at: its row can never be older than this.
            if item.change != nil, failure == nil, let dossierID = entry.dossierID {
                row.generation = try transaction.dossierGeneration(id: dossierID)
            }
            row.hash = keys.link(row, to: hash)
            hash = row.hash
            rows.append(row)
            if seq % checkpointInterval == 0 { checkpoints.append(keys.checkpoint(seq: seq, hash: hash, at: clock.now())) }
            results.append(failure.map { .changeFailed($0) } ?? .entry(seq))
        }
        try transaction.append(traceEntries: rows, checkpoints: checkpoints)
        return (results, checkpoints, ChainEnd(seq: seq, hash: hash))
    }

    /// Where the chain ends: the last entry's seq and hash.
    struct ChainEnd: Sendable, Equatable {
        var seq: Int64
        var hash: Data
    }

    /// Refuses to extend a chain that no longer ends where this writer left it.
    private static func check(_ tail: (seq: Int64, hash: Data, checkpointSeq: Int64), _ expected: ChainEnd?) throws(StoreError) {
        guard let expected, expected != ChainEnd(seq: tail.seq, hash: tail.hash) else { return }
        throw StoreError(
            .integrity,
            "the trace in the index ends at entry \(tail.seq), not at entry \(expected.seq) where this daemon last wrote: entries were removed or added behind its back. The trace takes no entry until the daemon is restarted and the trace checked (`coffre admin verify`)."
        )
    }

    /// The chain's end as the transaction finds it.
    private static func chainTail(_ reader: any IndexReader) throws -> (seq: Int64, hash: Data, checkpointSeq: Int64) {
        let tail = try reader.traceTail()
        // Far beyond any real trace (a million entries a second for 146,000 years): a damaged
        // index. Appending would overflow the sequence; refuse rather than stop there.
        if let last = tail.last?.seq, last >= Int64.max / 2 {
            throw StoreError(.integrity, "the trace's last entry has sequence number \(last), out of range: the index is damaged")
        }
        return (tail.last?.seq ?? 0, tail.last?.hash ?? genesis, tail.checkpoint?.seq ?? 0)
    }

    /// The change an appended entry allowed failed; the entry itself was written.
    struct ChangeFailed: Error {
        let error: any Error
    }
}

/// The operation's single-use assertion was recorded already (by a daemon sharing the index,
/// or by this one before a restart): nothing of the operation was written.
struct Replayed: Error {}

/// The facts an operation was decided on changed before its commit (another operation on the
/// same dossier committed first): nothing of it was written, its entry neither; decide again.
struct StaleDecision: Error {}
