import CoffreDomain
@testable import CoffreStore
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

    /// Polls `condition` for up to five seconds (the sync runs 10 ms after the commit).
    func eventually(_ condition: () -> Bool) async throws -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }

    @Test func aBatchedEntryIsCommittedAtOnceAndSyncedSoonAfter() async throws {
        let fixture = try await VaultFixture()
        let vault = fixture.vault
        let syncer = vault.trace.syncer
        #expect(syncer.batches)
        let before = syncer.syncCount
        let seq = try await record(vault, "document.content", .batched)
        // Committed when the append returns: another connection reads it.
        let rows = try await vault.index.traceEntries(from: seq, limit: 10)
        #expect(rows.map(\.action) == ["document.content"])
        // The writer is back at synchronous=FULL for whatever commits next.
        #expect(try await vault.index.durabilitySettings().synchronous == 2)
        #expect(try await eventually { syncer.syncCount > before })
    }

    @Test func anEntryThatMustBeDurableLeavesNothingToSync() async throws {
        let fixture = try await VaultFixture()
        let vault = fixture.vault
        let before = vault.trace.syncer.syncCount
        for _ in 0..<5 { _ = try await record(vault, "dossier.manage", .beforeReturning) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(vault.trace.syncer.syncCount == before)
    }

    @Test func manyBatchedEntriesShareFewSyncs() async throws {
        let fixture = try await VaultFixture()
        let vault = fixture.vault
        let syncer = vault.trace.syncer
        let before = syncer.syncCount
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<200 { group.addTask { _ = try await self.record(vault, "document.list", .batched) } }
            try await group.waitForAll()
        }
        #expect(try await eventually { syncer.syncCount > before })
        try await Task.sleep(for: .milliseconds(50))
        // One sync per 10 ms window at most, so far fewer than one per entry.
        #expect(syncer.syncCount - before < 100, "\(syncer.syncCount - before) syncs for 200 entries")
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
        #expect(try await eventually { !syncer.batches && recovered.isSet })
        #expect(syncer.syncCount == 0)
    }
}

/// Set once, read from the test.
final class RecoveryFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
