import CoffreCrypto
import CoffreDomain
@testable import CoffreStore
import Foundation
import GRDB
import Testing

/// `verifyTrace` walks the chain, the signed checkpoints and the anchors a page at a time. The
/// keyed chain catches an entry changed, inserted or removed in the middle, even with the plain
/// hashes recomputed; the checkpoints' fixed places catch one removed; the checkpoints and the
/// anchors catch the end of the trace cut off, which leaves a chain that still holds.
@Suite struct TraceVerificationTests {
    /// 330 entries: checkpoints every 64 (at 64, 128, 192, 256 and 320) and one at the clean
    /// stop's end of the chain (330).
    func tracedVault() async throws -> VaultFixture {
        let fixture = try await VaultFixture()
        let detail = TraceDetail(actorRole: "patient", actorID: VaultFixture.patient.value)
        for index in 0..<330 {
            _ = try await fixture.vault.recordTrace(
                action: "entry.\(index)", outcome: .allowed, detail: detail, dossier: nil, durability: .batched)
        }
        try await fixture.vault.checkpointTrace()
        return fixture
    }

    func checkpointSeqs(_ fixture: VaultFixture) async throws -> [Int64] {
        try await fixture.vault.sqlite.pool.read { db in
            try Int64.fetchAll(db, sql: "SELECT seq FROM trace_checkpoint ORDER BY seq")
        }
    }

    func damage(_ fixture: VaultFixture, _ sql: String) async throws {
        try await fixture.vault.sqlite.pool.write { db in try db.execute(sql: sql) }
    }

    @Test func aLongTraceIsCheckedAPageAtATime() async throws {
        let fixture = try await tracedVault()
        #expect(try await checkpointSeqs(fixture) == [64, 128, 192, 256, 320, 330])
        // Pages of 2 entries and 2 checkpoints: every boundary between pages is crossed.
        let paged = try await fixture.vault.verifyTrace(pageSize: 2)
        #expect(paged.problems.isEmpty, "\(paged.problems)")
        #expect(paged.entriesChecked == 330)
        #expect(paged.checkpointsChecked == 6)
        #expect(paged.anchorsChecked == 6)
        #expect(paged.firstBrokenSeq == nil)
        #expect(try await fixture.vault.verifyTrace() == paged)
    }

    @Test func theEndOfTheTraceCutOffIsCaughtByItsCheckpoints() async throws {
        let fixture = try await tracedVault()
        try await damage(fixture, "DELETE FROM trace_entry WHERE seq > 200")
        let verification = try await fixture.vault.verifyTrace(pageSize: 3)
        // What is left is a chain that holds: only the checkpoints and anchors past it say what is gone.
        let cut = "names an entry the index no longer has (the trace was cut, or the index rolled back)"
        #expect(verification.entriesChecked == 200)
        #expect(verification.checkpointsChecked == 6)
        #expect(verification.firstBrokenSeq == 256)
        #expect(
            verification.problems
                == [256, 320, 330].map { "checkpoint at entry \($0) does not match the trace (entries changed or removed)" }
                + [256, 320, 330].map { "anchor of entry \($0) " + cut })
        // With the checkpoints past it removed too, the anchors, outside the index, still say it.
        try await damage(fixture, "DELETE FROM trace_checkpoint WHERE seq > 200")
        let again = try await fixture.vault.verifyTrace(pageSize: 3)
        #expect(again.firstBrokenSeq == 256)
        #expect(again.anchorsChecked == 6)
        #expect(again.problems == [256, 320, 330].map { "anchor of entry \($0) " + cut })
    }

    /// The review's attack: an entry rewritten, the plain SHA-256 chain recomputed from there as
    /// it used to be, and the checkpoints from there deleted. Without the chain key the hashes
    /// cannot be made to follow, and the missing checkpoints and the anchors say the same.
    @Test func anEntryRewrittenWithThePlainChainRecomputedIsNamed() async throws {
        let fixture = try await tracedVault()
        try await fixture.vault.sqlite.pool.write { db in
            try db.execute(sql: "UPDATE trace_entry SET action = 'route.unknown', outcome = 'refused' WHERE seq = 100")
            var previous = try Data.fetchOne(db, sql: "SELECT hash FROM trace_entry WHERE seq = 99")!
            for row in try TraceEntryRow.fetchAll(db, sql: "SELECT * FROM trace_entry WHERE seq >= 100 ORDER BY seq") {
                previous = Data(SHA256Hasher.hash(Array(previous) + row.chainedBytes))
                try db.execute(sql: "UPDATE trace_entry SET hash = ? WHERE seq = ?", arguments: [previous, row.seq])
            }
            try db.execute(sql: "DELETE FROM trace_checkpoint WHERE seq >= 100")
        }
        let verification = try await fixture.vault.verifyTrace(pageSize: 50)
        #expect(verification.firstBrokenSeq == 100)
        #expect(verification.problems.first == "trace entry 100 does not follow from the entry before it (changed, inserted or reordered)")
        for seq in [128, 192, 256, 320] {
            #expect(verification.problems.contains("the checkpoint due at entry \(seq) is missing (removed)"), "\(seq)")
            #expect(
                verification.problems.contains(
                    "anchor of entry \(seq) does not match the index's entry (the trace was rewritten, or the index replaced)"), "\(seq)")
        }
        // The start notices too: the last anchor no longer matches.
        let refused = await #expect(throws: StoreError.self) { try await fixture.reopen() }
        #expect(refused?.code == .integrity)
        #expect(
            refused?.message.contains("the index's trace does not reach its last anchor (entry 330") == true, "\(refused?.message ?? "")")
    }

    /// Entries removed from the end while the vault runs: the next append finds the chain
    /// ending elsewhere than where it wrote last, and the trace takes no more entries.
    @Test func entriesRemovedFromTheEndWhileTheVaultRunsStopTheTrace() async throws {
        let fixture = try await tracedVault()
        try await damage(fixture, "DELETE FROM trace_entry WHERE seq > 300")
        let detail = TraceDetail(actorRole: "patient", actorID: VaultFixture.patient.value)
        await #expect(throws: (any Error).self) {
            try await fixture.vault.recordTrace(action: "after", outcome: .allowed, detail: detail, dossier: nil)
        }
        #expect(try await fixture.vault.index.traceEntries(from: 301, limit: 10).isEmpty, "nothing written over the cut")
    }

    /// The trace and its anchor file deleted together do not make a new vault.
    @Test func theTraceAndItsAnchorFileRemovedTogetherAreRefused() async throws {
        let fixture = try await tracedVault()
        try await damage(fixture, "DELETE FROM trace_entry; DELETE FROM trace_checkpoint")
        try FileManager.default.removeItem(atPath: fixture.vault.configuration.traceAnchorPath)
        let refused = await #expect(throws: StoreError.self) { try await fixture.reopen() }
        #expect(refused?.message.contains("is missing but this vault has a trace") == true, "\(refused?.message ?? "")")
    }

    /// A check that runs while entries are written covers the trace as it was when it began,
    /// and finds nothing wrong with what is written meanwhile.
    @Test func aCheckWhileTheTraceGrowsFindsNothingWrong() async throws {
        let fixture = try await tracedVault()
        let detail = TraceDetail(actorRole: "patient", actorID: VaultFixture.patient.value)
        let vault = fixture.vault
        async let writing: Void = {
            for index in 0..<400 {
                _ = try await vault.recordTrace(
                    action: "more.\(index)", outcome: .allowed, detail: detail, dossier: nil, durability: .batched)
            }
        }()
        for _ in 0..<4 {
            let verification = try await vault.verifyTrace(pageSize: 7)
            #expect(verification.problems.isEmpty, "\(verification.problems)")
            #expect(verification.entriesChecked >= 330)
        }
        try await writing
        let after = try await vault.verifyTrace()
        #expect(after.problems.isEmpty)
        #expect(after.entriesChecked == 730)
    }

    /// A line torn by a crash while it was written is ended at the next start: the anchors
    /// written after it are read whole.
    @Test func aTornAnchorLineIsEndedAtTheNextStart() async throws {
        let fixture = try await tracedVault()
        let handle = try #require(FileHandle(forWritingAtPath: fixture.vault.configuration.traceAnchorPath))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("331 00ff".utf8))
        try handle.close()
        try await fixture.reopen()
        let detail = TraceDetail(actorRole: "patient", actorID: VaultFixture.patient.value)
        for index in 0..<70 {
            _ = try await fixture.vault.recordTrace(action: "more.\(index)", outcome: .allowed, detail: detail, dossier: nil)
        }
        try await fixture.vault.checkpointTrace()
        let verification = try await fixture.vault.verifyTrace()
        #expect(verification.problems.isEmpty, "\(verification.problems)")
        // 64 … 330 before, then 384 and the stop's 400.
        #expect(verification.anchorsChecked == 8)
    }

    @Test func aCheckpointRemovedFromItsPlaceIsNamed() async throws {
        let fixture = try await tracedVault()
        try await damage(fixture, "DELETE FROM trace_checkpoint WHERE seq IN (128, 192)")
        let verification = try await fixture.vault.verifyTrace(pageSize: 7)
        #expect(verification.firstBrokenSeq == 128)
        #expect(
            verification.problems == [
                "the checkpoint due at entry 128 is missing (removed)", "the checkpoint due at entry 192 is missing (removed)",
            ])
    }

    @Test func anEntryRemovedUnderACheckpointAndAForgedSignatureAreNamed() async throws {
        let fixture = try await tracedVault()
        try await damage(fixture, "DELETE FROM trace_entry WHERE seq = 128")
        try await damage(fixture, "UPDATE trace_checkpoint SET signature = zeroblob(64) WHERE seq = 192")
        let verification = try await fixture.vault.verifyTrace(pageSize: 4)
        #expect(verification.entriesChecked == 330)
        #expect(verification.checkpointsChecked == 6)
        #expect(verification.firstBrokenSeq == 128)
        // The chain's problems come first, then the checkpoints', each in seq order.
        #expect(
            verification.problems == [
                "trace entries 128–128 are missing",
                "trace entry 129 does not follow from the entry before it (changed, inserted or reordered)",
                "checkpoint at entry 128 does not match the trace (entries changed or removed)",
                "checkpoint at entry 192 has an invalid signature",
                "anchor of entry 128 names an entry the index no longer has (the trace was cut, or the index rolled back)",
            ])
    }

    @Test func aTraceWithoutCheckpointsIsChainedOnly() async throws {
        let fixture = try await VaultFixture()
        let detail = TraceDetail(actorRole: "patient", actorID: VaultFixture.patient.value)
        for index in 0..<5 {
            _ = try await fixture.vault.recordTrace(
                action: "entry.\(index)", outcome: .allowed, detail: detail, dossier: nil, durability: .beforeReturning)
        }
        let verification = try await fixture.vault.verifyTrace(pageSize: 2)
        #expect(verification.problems.isEmpty, "\(verification.problems)")
        #expect(verification.entriesChecked == 5)
        #expect(verification.checkpointsChecked == 0)
    }
}

/// Damage the daemon never writes, read without stopping it.
@Suite struct DamagedTraceTests {
    @Test func checkpointsAtZeroOrBelowAreCheckedToo() async throws {
        let fixture = try await TraceVerificationTests().tracedVault()
        try await fixture.vault.sqlite.pool.write { db in
            for seq in [-5, 0] {
                try db.execute(
                    sql: "INSERT INTO trace_checkpoint (seq, hash, at, signature) VALUES (?, zeroblob(32), 0, zeroblob(64))",
                    arguments: [seq])
            }
        }
        let verification = try await fixture.vault.verifyTrace(pageSize: 2)
        #expect(verification.checkpointsChecked == 8)
        #expect(verification.firstBrokenSeq == -5)
        #expect(
            verification.problems
                == [-5, 0].flatMap {
                    [
                        "checkpoint at entry \($0) has an invalid signature",
                        "checkpoint at entry \($0) does not match the trace (entries changed or removed)",
                    ]
                })
    }

    @Test func theLargestSequenceNumberIsReportedAndRefusedAtTheNextOpen() async throws {
        let fixture = try await TraceVerificationTests().tracedVault()
        try await fixture.vault.sqlite.pool.write { db in
            try db.execute(
                sql: "INSERT INTO trace_entry (seq, at, action, outcome, hash) VALUES (?, 0, 'x', 'allowed', zeroblob(32))",
                arguments: [Int64.max])
        }
        // The walk adding one to it stopped the daemon.
        let verification = try await fixture.vault.verifyTrace(pageSize: 2)
        #expect(verification.entriesChecked == 330)
        #expect(verification.firstBrokenSeq == Int64.max)
        #expect(verification.problems == ["trace entry \(Int64.max) has a sequence number out of range (damage); the walk stops there"])
        // The next entry would overflow: the vault does not open, and says why.
        let refused = await #expect(throws: StoreError.self) { try await fixture.reopen() }
        #expect(refused?.code == .integrity)
    }
}

@Suite struct ProblemListTests {
    @Test func keepsTheFirstProblemsAndCountsTheOthers() {
        var list = ProblemList(limit: 2)
        #expect(list.isEmpty && list.lines.isEmpty)
        list.append("a")
        list.append(contentsOf: ["b"])
        #expect(list.lines == ["a", "b"])
        list.append(contentsOf: ["c", "d", "e"])
        #expect(!list.isEmpty)
        #expect(list.lines == ["a", "b", "3 more problem(s) of this check not listed (the first 2 are)"])
    }
}
