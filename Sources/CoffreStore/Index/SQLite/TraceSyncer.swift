#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import Logging
import Synchronization

/// Makes batched trace commits durable: syncs the index's WAL at most `interval` after a
/// commit that did not sync it.
///
/// The brief asks for `synchronous=FULL` where a lost commit would lose a document or a key,
/// and for trace rows to be batched rather than each paying an fsync. A commit at
/// `synchronous=NORMAL` is in the WAL (so in the page cache) when it returns; this syncs that
/// file on its own descriptor, on a thread of its own, so that neither the writer connection
/// nor an event loop waits for the disk. Any later FULL commit syncs the same file and so the
/// entries before it too.
///
/// A failed sync turns batching off for the rest of the process's life: every entry then waits
/// for its own synced commit, and the index is checkpointed so that what the failed sync may
/// have dropped is copied into the database file and synced there (Linux may mark pages clean
/// after a failed `fdatasync`, and a later sync of the same file would not write them).
public final class TraceSyncer: Sendable {
    /// The largest interval accepted: beyond it, too many reads could lose their record.
    public static let maximumInterval: Duration = .seconds(1)

    private struct State {
        var scheduled = false
        var descriptor: Int32 = -1
        var inode: ino_t = 0
        var failed = false
        var syncs = 0
        var checkpointing = false
        /// Commits made without SQLite's automatic checkpoint since the last one asked for.
        var commitsWithoutCheckpoint = 0
    }

    let walPath: String
    let interval: Duration
    private let logger: Logger
    private let state = Mutex(State())
    /// Serial: one sync at a time, so that the descriptor is never replaced under a sync.
    private let queue = DispatchQueue(label: "coffre.trace-sync")
    /// Called once after a sync failed, to copy the WAL into the database file.
    private let recover: @Sendable () async -> Void
    /// Called once `checkpointCommits` commits skipped SQLite's automatic checkpoint (unsynced
    /// commits made on the calling thread, so that none of them waits for it). Counted in
    /// commits rather than read from the WAL's size: SQLite reuses the WAL from its start after
    /// a checkpoint without shrinking the file, so a size once past any bound stays past it.
    private let checkpoint: @Sendable () async -> Void
    private let checkpointCommits: Int

    /// `interval` zero turns batching off: every entry waits for its own synced commit.
    init(
        walPath: String, interval: Duration, logger: Logger, checkpointCommits: Int = 250,
        checkpoint: @escaping @Sendable () async -> Void = {}, recover: @escaping @Sendable () async -> Void
    ) {
        self.walPath = walPath
        self.interval = min(max(interval, .zero), Self.maximumInterval)
        self.logger = logger
        self.checkpointCommits = checkpointCommits
        self.checkpoint = checkpoint
        self.recover = recover
    }

    deinit {
        let descriptor = state.withLock { $0.descriptor }
        if descriptor >= 0 { close(descriptor) }
    }

    /// Whether a batched entry may be committed without syncing the WAL.
    var batches: Bool { interval > .zero && !state.withLock { $0.failed } }

    /// How many syncs ran, for tests.
    var syncCount: Int { state.withLock { $0.syncs } }

    /// A commit left entries in the WAL unsynced: sync it within `interval`. Entries written
    /// while a sync runs get the next one. `checkpointSkipped`: the commit ran without SQLite's
    /// automatic checkpoint (a trace commit is a few pages: 250 of them are about SQLite's
    /// default of 1,000).
    func entriesWritten(checkpointSkipped: Bool = false) {
        let schedule = state.withLock { state in
            if checkpointSkipped { state.commitsWithoutCheckpoint += 1 }
            if state.scheduled { return false }
            state.scheduled = true
            return true
        }
        guard schedule else { return }
        let nanoseconds = interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { self.sync() }
    }

    /// Returns once every commit made before the call is durable, without asking for a sync of
    /// its own: after the sync already scheduled for them, or the one running now (the trace's
    /// anchors wait for this, once per 64 entries).
    func durable() async {
        let scheduled = state.withLock { $0.scheduled }
        await withCheckedContinuation { continuation in
            if scheduled {
                // The scheduled sync reaches the serial queue at its deadline, no later than this.
                let nanoseconds = interval.components.seconds * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000
                queue.asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds)) + .milliseconds(5)) { continuation.resume() }
            } else {
                // Nothing unsynced, or a sync running that covers it: after that one.
                queue.async { continuation.resume() }
            }
        }
    }

    /// Syncs now and returns once done (at a clean stop).
    func syncNow() async {
        await withCheckedContinuation { continuation in
            queue.async {
                self.sync()
                continuation.resume()
            }
        }
    }

    /// On `queue` only.
    private func sync() {
        // Cleared before the sync, so that a commit made while it runs schedules another.
        let descriptor = state.withLock { state in
            state.scheduled = false
            return state.descriptor
        }
        do throws(StoreError) {
            let current = try currentDescriptor(descriptor)
            while fdatasync(current) != 0 {
                guard errno == EINTR else { throw POSIX.error("fdatasync of the index's WAL failed", errno) }
            }
            state.withLock { $0.syncs += 1 }
            checkpointIfDue()
        } catch {
            let first = state.withLock { state in
                defer { state.failed = true }
                return !state.failed
            }
            guard first else { return }
            logger.error(
                "the trace could not be synced: every access now waits for its own synced commit; the index is being checkpointed",
                metadata: CoffreEvent.traceSyncFailed.metadata(["error": "\(error)"]))
            let recover = self.recover
            Task { await recover() }
        }
    }

    /// Asks for a checkpoint, one at a time, once `checkpointCommits` commits skipped one.
    private func checkpointIfDue() {
        let start = state.withLock { state in
            guard !state.checkpointing, state.commitsWithoutCheckpoint >= checkpointCommits else { return false }
            state.checkpointing = true
            state.commitsWithoutCheckpoint = 0
            return true
        }
        guard start else { return }
        let checkpoint = self.checkpoint
        Task {
            await checkpoint()
            self.state.withLock { $0.checkpointing = false }
        }
    }

    /// The WAL's descriptor, opened (again) if SQLite replaced the file since. SQLite keeps the
    /// same WAL file while the index is open, truncating and rewriting it in place; the inode
    /// check costs one `stat` per sync and keeps this right if that ever changes.
    private func currentDescriptor(_ descriptor: Int32) throws(StoreError) -> Int32 {
        var onDisk = stat()
        guard stat(walPath, &onDisk) == 0 else { throw POSIX.error("cannot find the index's WAL", errno) }
        if descriptor >= 0 && state.withLock({ $0.inode }) == onDisk.st_ino { return descriptor }
        // Read-only is enough for fdatasync, and guarantees this never writes SQLite's file.
        let fresh = try POSIX.open(walPath, flags: O_RDONLY | O_CLOEXEC, mode: 0)
        var opened = stat()
        fstat(fresh, &opened)
        state.withLock { state in
            state.descriptor = fresh
            state.inode = opened.st_ino
        }
        if descriptor >= 0 { close(descriptor) }
        return fresh
    }
}
