#if canImport(Glibc)
    import Glibc
#endif
import CoffreDomain
@testable import CoffreStore
import CoffreTesting
import Foundation
import Logging
import Synchronization
import Testing

/// Reads and refusals are committed before they return and synced by batch; anything else is
/// synced at its own commit; a failed sync turns batching off.
@Suite struct TraceDurabilityTests {
    func record(_ vault: Vault, _ action: String, _ durability: TraceDurability) async throws -> Int64 {
        try await vault.recordTrace(
            action: action, outcome: .allowed, detail: TraceDetail(actorRole: "patient", actorID: VaultFixture.patient.value),
            dossier: nil, durability: durability)
    }

    @Test func aBatchedEntryIsCommittedAtOnceAndSyncedSoonAfter() async throws {
        let fixture = try await VaultFixture()
        let vault = fixture.vault
        let syncer = (try vault.sqlite).syncer
        #expect(syncer.batches)
        let before = syncer.syncCount
        let seq = try await record(vault, "document.content", .batched)
        // Committed when the append returns: another connection reads it.
        let rows = try await vault.index.traceEntries(from: seq, limit: 10)
        #expect(rows.map(\.action) == ["document.content"])
        // The writer is back at synchronous=FULL, and automatic checkpoints, for whatever
        // commits next.
        let settings = try await vault.sqlite.durabilitySettings()
        #expect(settings.synchronous == 2)
        #expect(settings.autocheckpoint == SQLiteIndex.autocheckpointPages)
        #expect(await eventually { syncer.syncCount > before })
    }

    /// `durable()` waits for the sync already due, and asks for none of its own.
    @Test func durableWaitsForTheNextSyncWithoutAddingOne() async throws {
        let fixture = try await VaultFixture()
        let vault = fixture.vault
        let syncer = (try vault.sqlite).syncer
        try await Task.sleep(for: .milliseconds(50))
        let idle = syncer.syncCount
        await syncer.durable()
        #expect(syncer.syncCount == idle, "nothing unsynced: no sync asked for")
        _ = try await record(vault, "document.content", .batched)
        await syncer.durable()
        // After the sync the commit scheduled (it may have run before the call, on a loaded
        // machine), and that one only.
        #expect(syncer.syncCount == idle + 1)
    }

    @Test func anEntryThatMustBeDurableLeavesNothingToSync() async throws {
        let fixture = try await VaultFixture()
        let vault = fixture.vault
        let before = (try vault.sqlite).syncer.syncCount
        for _ in 0..<5 { _ = try await record(vault, "dossier.manage", .beforeReturning) }
        try await Task.sleep(for: .milliseconds(200))
        #expect((try vault.sqlite).syncer.syncCount == before)
    }

    @Test func manyBatchedEntriesShareFewSyncs() async throws {
        let fixture = try await VaultFixture()
        let vault = fixture.vault
        let syncer = (try vault.sqlite).syncer
        let before = syncer.syncCount
        let began = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 { group.addTask { _ = try await self.record(vault, "document.list", .batched) } }
            try await group.waitForAll()
        }
        #expect(await eventually { syncer.syncCount > before })
        try await Task.sleep(for: .milliseconds(50))
        // One sync per 10 ms window at most, so fewer than one per entry however slowly the
        // machine ran the 200 commits (a starved run spreads them over more windows).
        let syncs = syncer.syncCount - before
        let windows = Int((ContinuousClock.now - began) / .milliseconds(10)) + 1
        #expect(syncs < 200 && syncs <= windows, "\(syncs) syncs for 200 entries in \(windows) windows of 10 ms")
    }

    @Test func theChainHoldsAcrossBatchedAndSyncedEntriesAndARestart() async throws {
        let fixture = try await VaultFixture()
        for index in 0..<40 {
            _ = try await record(fixture.vault, "entry.\(index)", index % 3 == 0 ? .beforeReturning : .batched)
        }
        try await fixture.vault.checkpointTrace()
        try await fixture.reopen()
        let verification = try await fixture.vault.verifyTrace()
        #expect(verification.problems.isEmpty, "\(verification.problems)")
        #expect(verification.entriesChecked == 40)
        let last = try await record(fixture.vault, "after.restart", .batched)
        #expect(last == 41)
    }

    /// With the writer idle, a read's entry is committed on the calling thread; with a write
    /// queued or running, it is not (it would wait for it), and goes through the queue.
    @Test func anUnsyncedCommitRunsOnTheCallingThreadOnlyWhenTheWriterIsIdle() async throws {
        let fixture = try await VaultFixture()
        let index = try fixture.vault.sqlite
        let caller = pthread_self()
        let ranHere = try index.writeUnsyncedIfIdle("test") { _ in pthread_equal(pthread_self(), caller) != 0 }
        #expect(ranHere == true)
        index.writerLoad.enter()
        #expect(try index.writeUnsyncedIfIdle("test") { _ in true } == nil)
        index.writerLoad.leave()
        #expect(try index.writeUnsyncedIfIdle("test") { _ in true } == true)
    }

    /// Unsynced commits on the calling thread skip SQLite's automatic checkpoint: the syncer
    /// asks for one after enough of them, and only then.
    @Test func commitsThatSkippedTheAutomaticCheckpointGetOneAfterASync() async throws {
        let fixture = try await VaultFixture()
        _ = try await record(fixture.vault, "document.list", .batched)  // the WAL is not empty
        let asked = Counter()
        let syncer = TraceSyncer(
            walPath: fixture.state + "/index.sqlite-wal", interval: .milliseconds(1), logger: Logger(label: "test"), checkpointCommits: 2,
            checkpoint: { asked.add() }, recover: {})
        // Commits that ran SQLite's own checkpoint, then one that skipped it: none asked yet.
        syncer.entriesWritten()
        syncer.entriesWritten(checkpointSkipped: true)
        #expect(await eventually { syncer.syncCount >= 1 })
        syncer.entriesWritten()
        #expect(await eventually { syncer.syncCount >= 2 })
        #expect(asked.value == 0)
        // The second commit without it: one checkpoint, and the count starts again.
        syncer.entriesWritten(checkpointSkipped: true)
        #expect(await eventually { asked.value == 1 })
        syncer.entriesWritten()
        #expect(await eventually { syncer.syncCount >= 4 })
        #expect(asked.value == 1)
        #expect(syncer.batches)
    }

    @Test func aZeroIntervalSyncsEveryEntryAtItsCommit() async throws {
        let fixture = try await VaultFixture()
        let syncer = TraceSyncer(walPath: fixture.state + "/index.sqlite-wal", interval: .zero, logger: Logger(label: "test")) {}
        #expect(!syncer.batches)
    }

    @Test func aFailedSyncTurnsBatchingOffAndCheckpoints() async throws {
        let recovered = RecoveryFlag()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let syncer = TraceSyncer(walPath: "/nonexistent/index.sqlite-wal", interval: .milliseconds(1), logger: logger) {
            recovered.set()
        }
        #expect(syncer.batches)
        syncer.entriesWritten()
        #expect(await eventually { !syncer.batches && recovered.isSet })
        #expect(syncer.syncCount == 0)
    }
}

/// Counted from any thread, read from the test.
final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}

/// Set once, read from the test.
final class RecoveryFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
