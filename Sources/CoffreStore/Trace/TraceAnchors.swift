#if canImport(Glibc)
    import Glibc
#endif
import CoffreCrypto
import CoffreDomain
import Foundation
import Logging
import Synchronization

/// Anchors the trace outside the index: each checkpoint, once the index has made it durable, is
/// appended to the anchor file (fsynced) and written to the journal with its own `MESSAGE_ID`.
///
/// The index alone cannot prove it was not rolled back: whoever can write it can put back an
/// older copy, whose chain and checkpoints are all genuine. The anchors can: a trace that no
/// longer reaches the last anchor was cut or rolled back. The start checks the last anchor, and
/// `verify` every one. Anchoring runs after the commit, off the request path; an anchor is
/// written only once its checkpoint is durable, so a power loss never leaves the file ahead of
/// the index.
actor TraceAnchors {
    let path: String
    private let keys: TraceKeys
    private let index: any VaultIndex
    private let logger: Logger
    private let fd: Int32
    private var pending: [TraceCheckpointRow] = []
    private var writing: Task<Void, Never>? = nil
    /// The last seq anchored: checkpoints submitted out of order (a clean stop's and a due one
    /// racing) are written once each, in order.
    private var writtenThrough: Int64 = 0
    /// Checkpoints waiting to be anchored; past `backlogLimit` (the file cannot be written) the
    /// trace refuses new entries, failing closed, until it can be written again.
    private let backlog = Mutex(0)
    static let backlogLimit = 32
    /// Where the file is written and synced: off the event loops.
    private let ioQueue = DispatchQueue(label: "coffre.trace-anchors")

    /// Most checkpoints the index may hold past the file's last anchor at a start: those of the
    /// moments before a crash. More means the file was cut or replaced.
    static let unanchoredLimit = 64

    private init(path: String, keys: TraceKeys, index: any VaultIndex, logger: Logger, fd: Int32) {
        self.path = path
        self.keys = keys
        self.index = index
        self.logger = logger
        self.fd = fd
    }

    deinit { close(fd) }

    /// Opens the anchor file at `path` after checking the index against it, and anchors the
    /// checkpoints a crash left unanchored. A new vault gets a new file; an index whose trace
    /// does not reach the file's last anchor, or whose file is missing, does not open.
    /// - Parameter newTrace: whether the trace's keys were made by this open: only then is an
    ///   empty trace without an anchor file a new vault (rather than a trace and its anchors
    ///   deleted together).
    static func open(
        path: String, keys: TraceKeys, index: any VaultIndex, newTrace: Bool, logger: Logger
    ) async throws(StoreError) -> TraceAnchors {
        let tail = try await index.read("read the trace's end") { try $0.traceTail() }
        var last: TraceCheckpointRow? = nil
        let file = try TraceAnchorFile.tail(path: path)
        let new = newTrace && tail.last == nil && file?.key == nil && file?.last == nil
        if let file, !new {
            guard file.key == keys.publicKey.bytes else {
                throw StoreError(
                    .integrity,
                    "the trace anchor file \(path) names another signing key than this vault's: it belongs to another vault, or the index was replaced"
                )
            }
            last = file.last
        } else if !new {
            throw StoreError(
                .integrity,
                "the trace anchor file \(path) is missing but this vault has a trace: the file was removed (with the trace, if the trace is empty), or the index comes from elsewhere (a vault from before anchored traces must be started anew). Restore the file from a backup."
            )
        }
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StoreError(.io, "cannot open the trace anchor file \(path)", errno: errno) }
        let anchors = TraceAnchors(path: path, keys: keys, index: index, logger: logger, fd: fd)
        if new { try await anchors.writeHeader() }
        let unanchored = try await anchors.checkIndex(against: last, tail: tail.last)
        // A torn last line is ended, so that the next line is read whole.
        if file?.torn == true { try await anchors.append([10]) }
        await anchors.setWritten(through: last?.seq ?? 0)
        if !unanchored.isEmpty {
            // The previous run's last commits may still be in the page cache only.
            await index.sync()
            try await anchors.write(unanchored)
        }
        return anchors
    }

    /// Queues checkpoints just committed; they are anchored once the index has made them durable.
    func submit(_ checkpoints: [TraceCheckpointRow]) {
        guard !checkpoints.isEmpty else { return }
        pending += checkpoints
        backlog.withLock { $0 = pending.count }
        guard writing == nil else { return }
        writing = Task { await self.drain() }
    }

    /// Whether too many checkpoints wait to be anchored (the file cannot be written): the trace
    /// then refuses new entries rather than go on without anchors.
    nonisolated var isFailing: Bool { backlog.withLock { $0 } > Self.backlogLimit }

    /// Waits until every checkpoint submitted so far is anchored (at a clean stop).
    func flush() async {
        while let writing { await writing.value }
    }

    private func drain() async {
        while !pending.isEmpty {
            let batch = pending.sorted { $0.seq < $1.seq }
            pending = []
            // Durable in the index first (with the syncer's next sync, within milliseconds): the
            // file must never be ahead of it.
            await index.durable()
            do {
                try await write(batch)
            } catch {
                // Kept and tried again in a second; the trace stops taking entries if the
                // backlog grows past its limit.
                pending = batch + pending
                logger.error(
                    "trace checkpoints could not be anchored; retrying",
                    metadata: CoffreEvent.integrityFailure.metadata(["trace.seq": "\(batch.last?.seq ?? 0)", "error": "\(error)"]))
                try? await Task.sleep(for: .seconds(1))
            }
            backlog.withLock { $0 = pending.count }
        }
        writing = nil
    }

    private func setWritten(through seq: Int64) { writtenThrough = seq }

    /// Appends the checkpoints not anchored yet, syncs the file, and logs each to the journal:
    /// on a thread of its own, since the actor runs on the event loops, which must never wait
    /// for a disk.
    private func write(_ checkpoints: [TraceCheckpointRow]) async throws(StoreError) {
        let fresh = checkpoints.filter { $0.seq > writtenThrough }
        guard let last = fresh.last else { return }
        let (fd, logger) = (self.fd, self.logger)
        let result: Result<Void, StoreError> = await withCheckedContinuation { continuation in
            ioQueue.async {
                do throws(StoreError) {
                    try POSIX.writeAll(fd, Array(fresh.map(TraceAnchorFile.line).joined().utf8))
                    guard fdatasync(fd) == 0 else { throw POSIX.error("fsync of the trace anchor file failed", errno) }
                    for checkpoint in fresh {
                        logger.info(
                            "trace anchored",
                            metadata: CoffreEvent.traceAnchored.metadata([
                                "trace.seq": "\(checkpoint.seq)", "trace.hash": "\(Hex.encode(Array(checkpoint.hash)))",
                                "trace.at": "\(checkpoint.at)", "trace.signature": "\(Hex.encode(Array(checkpoint.signature)))",
                            ]))
                    }
                    continuation.resume(returning: .success(()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        try result.get()
        writtenThrough = last.seq
    }

    private func append(_ bytes: [UInt8]) throws(StoreError) { try POSIX.writeAll(fd, bytes) }

    private func writeHeader() throws(StoreError) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw POSIX.error("cannot inspect the trace anchor file", errno) }
        guard info.st_size == 0 else { throw StoreError(.integrity, "\(path) is not a trace anchor file (it has no header): move it away") }
        try POSIX.writeAll(fd, Array(TraceAnchorFile.header(keys.publicKey).utf8))
        guard fsync(fd) == 0 else { throw POSIX.error("fsync of the trace anchor file failed", errno) }
        try POSIX.syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// Checks that the index's trace reaches `last` (the file's last anchor) with the same hash,
    /// and that every entry after it follows under the chain key; returns the index's
    /// checkpoints past it, to anchor now.
    private func checkIndex(against last: TraceCheckpointRow?, tail: TraceEntryRow?) async throws(StoreError) -> [TraceCheckpointRow] {
        // Counted first: a file cut back to its header must not cost a walk of the whole trace.
        let unanchored = try await index.traceCheckpoints(after: last?.seq ?? .min, through: .max, limit: Self.unanchoredLimit + 1)
        guard unanchored.count <= Self.unanchoredLimit else {
            throw StoreError(
                .integrity,
                "the index holds more than \(Self.unanchoredLimit) trace checkpoints past the anchor file's last line: the file \(path) was cut or replaced. Restore it from a backup."
            )
        }
        var unchecked = Dictionary(unanchored.map { ($0.seq, $0) }, uniquingKeysWith: { first, _ in first })
        var previous = TraceWriter.genesis
        var from: Int64 = 1
        if let last {
            guard keys.signed(last) else {
                throw StoreError(.integrity, "the last line of the trace anchor file \(path) is not signed by this vault")
            }
            let entry = try await index.traceEntries(from: last.seq, limit: 1).first
            guard let entry, entry.seq == last.seq, entry.hash == last.hash else {
                let end = tail.map { "entry \($0.seq)" } ?? "no entry"
                throw StoreError(
                    .integrity,
                    "the index's trace does not reach its last anchor (entry \(last.seq), anchored at \(last.at) ms; the index ends at \(end) or differs there): the index was rolled back to an older copy, or its trace was cut or rewritten. `coffre admin verify` names what differs; the anchor file and the journal (MESSAGE_ID=\(CoffreEvent.traceAnchored.messageID)) hold the anchors."
                )
            }
            previous = entry.hash
            from = last.seq + 1
        }
        // The entries past the last anchor: a few batches at most, each linked to the one before.
        while true {
            let page = try await index.traceEntries(from: from, limit: 1_000)
            guard !page.isEmpty else { break }
            for row in page {
                guard row.seq == from, keys.link(row, to: previous) == row.hash else {
                    throw StoreError(
                        .integrity,
                        "trace entry \(row.seq), after the last anchor, does not follow from the one before: the trace was changed. Run `coffre admin verify`."
                    )
                }
                if let checkpoint = unchecked.removeValue(forKey: row.seq), !(keys.signed(checkpoint) && checkpoint.hash == row.hash) {
                    throw StoreError(
                        .integrity, "the trace checkpoint at entry \(row.seq) does not match the trace: run `coffre admin verify`")
                }
                previous = row.hash
                from += 1
            }
        }
        if let stray = unchecked.keys.min() {
            throw StoreError(.integrity, "a trace checkpoint at entry \(stray) names no entry of the trace: run `coffre admin verify`")
        }
        return unanchored
    }
}
