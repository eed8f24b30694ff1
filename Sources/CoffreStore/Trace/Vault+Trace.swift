import CoffreCrypto
public import CoffreDomain
import Foundation
import Logging

/// A trace entry as the patient reads it.
public struct TraceRecord: Sendable, Equatable {
    public var seq: Int64
    public var at: Int64
    public var action: String
    public var outcome: String
    /// Nil when the detail can no longer be opened (a purged dossier's key is gone).
    public var detail: TraceDetail?
}

/// The result of checking the whole trace.
public struct TraceVerification: Sendable, Equatable {
    public var entriesChecked: Int64
    public var checkpointsChecked: Int
    /// Lines of the anchor file checked against the index.
    public var anchorsChecked: Int
    /// The first entry whose hash does not follow from the one before, or that is missing.
    public var firstBrokenSeq: Int64?
    /// Every problem found, in words.
    public var problems: [String]
    /// The public key checkpoints are signed with, hex.
    public var signingKey: String
}

extension Vault {
    /// Writes a trace entry and returns its sequence number once it is committed, and durable
    /// as `durability` says. Callers write it before they act, and refuse the access if this
    /// throws.
    @discardableResult
    func recordTrace(
        action: String, outcome: TraceOutcome, detail: TraceDetail, dossier: DossierRecord?,
        durability: TraceDurability = .beforeReturning
    ) async throws(StoreError) -> Int64 {
        do {
            return try await appendTrace(
                action: action, outcome: outcome, detail: detail, dossier: dossier, change: nil, durability: durability)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot write the trace: \(error)")
        }
    }

    /// Appends an entry and, in its transaction, the change it allows (see `TraceWriter.append`).
    @discardableResult
    func appendTrace(
        action: String, outcome: TraceOutcome, detail: TraceDetail, dossier: DossierRecord?,
        change: TraceWriter.Change?, assertion: AssertionUse? = nil, durability: TraceDurability = .beforeReturning
    ) async throws -> Int64 {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        if let dossier, let key = dossier.key {
            let dossierID = dossier.id.value
            let plaintext = Array(try encoder.encode(detail))
            let entry = TraceWriter.Entry(
                dossierID: dossierID, action: action, outcome: outcome.rawValue, detail: nil,
                seal: { seq in Data(SealedBox.seal(plaintext, with: key, associatedData: Self.traceAD(seq: seq, dossierID: dossierID))) })
            return try await trace.append(entry, change: change, assertion: assertion, durability: durability)
        }
        // No dossier, so no dossier key: what identifies nobody stays in clear, and who decided
        // (a stranger's refusal for a patient without a dossier) is sealed under a key of the
        // vault's own, so that the trace keeps it and the file shows nothing of it.
        let clear = String(decoding: try encoder.encode(detail.anonymous), as: UTF8.self)
        var seal: @Sendable (Int64) throws(StoreError) -> Data? = { _ in nil }
        if detail != detail.anonymous {
            let (plaintext, key) = (Array(try encoder.encode(detail)), unattachedTraceKey)
            seal = { seq in Data(SealedBox.seal(plaintext, with: key, associatedData: Self.traceAD(seq: seq, dossierID: ""))) }
        }
        let entry = TraceWriter.Entry(dossierID: nil, action: action, outcome: outcome.rawValue, detail: clear, seal: seal)
        return try await trace.append(entry, change: change, assertion: assertion, durability: durability)
    }

    /// The dossier's trace after `seq`, oldest first, with its detail opened.
    func traceEntries(for dossier: DossierRecord, after seq: Int64 = 0, limit: Int = 10_000) async throws(StoreError)
        -> [TraceRecord]
    {
        let rows = try await index.traceEntries(dossierID: dossier.id.value, after: seq, limit: limit)
        // Entries written before a rekey are sealed under an earlier key generation.
        var keys = dossier.key.map { [$0] } ?? []
        var earlierKeysLoaded = false
        var records: [TraceRecord] = []
        records.reserveCapacity(rows.count)
        for row in rows {
            var detail: TraceDetail? = nil
            if let sealed = row.sealed {
                let associatedData = Self.traceAD(seq: row.seq, dossierID: dossier.id.value)
                detail = keys.lazy.compactMap { try? Self.open(Array(sealed), key: $0, associatedData: associatedData) }.first
                if detail == nil && !earlierKeysLoaded && dossier.keyGeneration > 1 {
                    earlierKeysLoaded = true
                    keys += try await archivedDossierKeys(dossier.id)
                    detail = keys.lazy.compactMap { try? Self.open(Array(sealed), key: $0, associatedData: associatedData) }.first
                }
            }
            records.append(TraceRecord(seq: row.seq, at: row.at, action: row.action, outcome: row.outcome, detail: detail))
        }
        return records
    }

    /// Checks the whole chain, every checkpoint and every anchor, and names the first broken entry.
    func verifyTrace() async throws(StoreError) -> TraceVerification {
        try await verifyTrace(pageSize: 10_000)
    }

    /// Proves the index's trace three ways:
    /// - each entry follows from the one before under the chain key (a change breaks it, and
    ///   without the master key no one can mend it);
    /// - a checkpoint signed by this vault sits at every 64th entry and matches it (a missing
    ///   one is a failure);
    /// - every line of the anchor file, kept outside the index, names an entry the index still
    ///   has, with the same hash (a cut tail or a whole index rolled back to an older copy no
    ///   longer reaches the last one).
    ///
    /// Entries, checkpoints and anchors are read `pageSize` at a time and merged by seq, and
    /// problems are kept up to a limit, so memory stays bounded however long the trace grows (it
    /// grows with every access: 100 million entries carry about 1.5 million checkpoints).
    func verifyTrace(pageSize: Int) async throws(StoreError) -> TraceVerification {
        precondition(pageSize > 0, "a page of no entries would end the walk at once")
        var chainProblems = ProblemList()
        var checkpointProblems = ProblemList()
        var anchorProblems = ProblemList()
        var firstBroken: Int64? = nil
        func broken(at seq: Int64) { firstBroken = min(firstBroken ?? seq, seq) }
        let keys = trace.keys
        // The check covers the trace as it is when it begins; entries, checkpoints and anchors
        // written while it runs are left for the next one. The anchor file's length is taken
        // before the index's end: an anchor is written only once its entry is in the index, so
        // every anchor within that length names an entry at or before that end.
        await trace.anchors.flush()
        var anchorBytes = stat()
        let anchorLength = stat(configuration.traceAnchorPath, &anchorBytes) == 0 ? Int64(anchorBytes.st_size) : 0
        let (end, lastCheckpoint) = try await index.read("read the trace's end") { reader in
            (try reader.traceTail().last?.seq ?? 0, try reader.lastTraceCheckpointSeq())
        }
        var anchors = try TraceAnchorFile.Reader(path: configuration.traceAnchorPath, length: anchorLength)
        defer { anchors?.close() }
        var anchorsChecked = 0
        var anchorPage: [TraceCheckpointRow] = []
        // The next anchor, a page of them read at a time off the event loop.
        func nextAnchorInFile() async throws(StoreError) -> TraceCheckpointRow? {
            if anchorPage.isEmpty, var reader = anchors {
                anchorPage = try await reader.nextPage(pageSize).reversed()
                anchors = reader
            }
            return anchorPage.popLast()
        }
        var nextAnchor = try await nextAnchorInFile()
        if anchors == nil {
            anchorProblems.append("the trace anchor file \(configuration.traceAnchorPath) is missing: the trace cannot be proven complete")
        } else if anchors?.key != keys.publicKey.bytes {
            anchorProblems.append("the trace anchor file names another signing key than this vault's")
        }
        func checkAnchor(entryHash: Data?) {
            guard let anchor = nextAnchor else { return }
            anchorsChecked += 1
            if !keys.signed(anchor) {
                anchorProblems.append("anchor of entry \(anchor.seq) is not signed by this vault")
            } else if entryHash != anchor.hash {
                anchorProblems.append(
                    entryHash == nil
                        ? "anchor of entry \(anchor.seq) names an entry the index no longer has (the trace was cut, or the index rolled back)"
                        : "anchor of entry \(anchor.seq) does not match the index's entry (the trace was rewritten, or the index replaced)")
                broken(at: anchor.seq)
            }
        }
        // Only the checkpoints there when the check begins: one signed while it runs may vouch
        // for an entry written after the walk has ended.
        var checkpoints = CheckpointPages(index: index, through: lastCheckpoint, pageSize: pageSize)
        var checkpointsChecked = 0
        var lastCheckpointSeq: Int64? = nil
        func check(_ checkpoint: TraceCheckpointRow, entryHash: Data?) {
            checkpointsChecked += 1
            lastCheckpointSeq = checkpoint.seq
            if !keys.signed(checkpoint) {
                checkpointProblems.append("checkpoint at entry \(checkpoint.seq) has an invalid signature")
            }
            if entryHash != checkpoint.hash {
                checkpointProblems.append("checkpoint at entry \(checkpoint.seq) does not match the trace (entries changed or removed)")
                broken(at: checkpoint.seq)
            }
        }

        var expectedSeq: Int64 = 1
        var previous = TraceWriter.genesis
        walk: while true {
            let page = try await index.traceEntries(from: expectedSeq, limit: pageSize)
            if page.isEmpty { break }
            for row in page {
                if row.seq > end { break walk }
                // A damaged index could hold the largest seq: the walk cannot go past it.
                guard row.seq < .max else {
                    chainProblems.append("trace entry \(row.seq) has a sequence number out of range (damage); the walk stops there")
                    broken(at: row.seq)
                    break walk
                }
                if row.seq != expectedSeq {
                    chainProblems.append("trace entries \(expectedSeq)–\(row.seq - 1) are missing")
                    broken(at: expectedSeq)
                }
                if keys.link(row, to: previous) != row.hash {
                    chainProblems.append("trace entry \(row.seq) does not follow from the entry before it (changed, inserted or reordered)")
                    broken(at: row.seq)
                }
                // Checkpoints at seqs the walk has passed without an entry vouch for a removed one.
                while let checkpoint = try await checkpoints.next(through: row.seq) {
                    check(checkpoint, entryHash: checkpoint.seq == row.seq ? row.hash : nil)
                }
                if row.seq % TraceWriter.checkpointInterval == 0 && lastCheckpointSeq != row.seq {
                    checkpointProblems.append("the checkpoint due at entry \(row.seq) is missing (removed)")
                    broken(at: row.seq)
                }
                while let anchor = nextAnchor, anchor.seq <= row.seq {
                    checkAnchor(entryHash: anchor.seq == row.seq ? row.hash : nil)
                    nextAnchor = try await nextAnchorInFile()
                }
                previous = row.hash
                expectedSeq = row.seq + 1
            }
        }
        // Checkpoints and anchors past the last entry: the end of the trace was removed.
        while let checkpoint = try await checkpoints.next(through: .max) {
            check(checkpoint, entryHash: nil)
        }
        while nextAnchor != nil {
            checkAnchor(entryHash: nil)
            nextAnchor = try await nextAnchorInFile()
        }
        return TraceVerification(
            entriesChecked: expectedSeq - 1, checkpointsChecked: checkpointsChecked, anchorsChecked: anchorsChecked,
            firstBrokenSeq: firstBroken, problems: chainProblems.lines + checkpointProblems.lines + anchorProblems.lines,
            signingKey: Hex.encode(keys.publicKey.bytes))
    }

    /// Signs a checkpoint at the end of the chain, syncs every entry written so far, and anchors
    /// the checkpoints not anchored yet; called at a clean stop.
    public func checkpointTrace() async throws(StoreError) {
        try await trace.checkpointNow()
        await trace.syncNow()
        await trace.anchors.flush()
    }

    /// The trace checkpoint public key, hex.
    public var traceSigningKey: String { Hex.encode(trace.publicKey.bytes) }

    /// The whole detail of an entry that names no dossier, opened with the vault's own key
    /// (for an audit: who was refused for a patient without a dossier); nil if it has none.
    func unattachedDetail(of row: TraceEntryRow) -> TraceDetail? {
        guard row.dossierId == nil, let sealed = row.sealed else { return nil }
        return try? Self.open(Array(sealed), key: unattachedTraceKey, associatedData: Self.traceAD(seq: row.seq, dossierID: ""))
    }

    static func traceAD(seq: Int64, dossierID: String) -> [UInt8] {
        Array("coffre/trace/v1/\(seq)/\(dossierID)".utf8)
    }
}

/// The trace's checkpoints in seq order up to a bound, read a page at a time.
private struct CheckpointPages {
    let index: any VaultIndex
    /// The last checkpoint's seq when the check began (nil when there was none).
    let last: Int64?
    let pageSize: Int
    private var page: [TraceCheckpointRow] = []
    private var position = 0
    /// The seq of the last checkpoint read; nil before the first page, which starts at the
    /// lowest (a damaged index may hold checkpoints at 0 or below: they are checked too).
    private var after: Int64? = nil

    init(index: any VaultIndex, through last: Int64?, pageSize: Int) {
        self.index = index
        self.last = last
        self.pageSize = pageSize
    }

    /// The next checkpoint if its seq is at most `seq`; nil otherwise, or when none is left.
    mutating func next(through seq: Int64) async throws(StoreError) -> TraceCheckpointRow? {
        if position == page.count {
            guard let last, after.map({ $0 < last }) ?? true else { return nil }
            page = try await index.traceCheckpoints(after: after, through: last, limit: pageSize)
            position = 0
            after = page.last?.seq ?? last
            if page.isEmpty { return nil }
        }
        guard page[position].seq <= seq else { return nil }
        position += 1
        return page[position - 1]
    }
}
