import CoffreCrypto
import CoffreDomain
@testable import CoffreStore
import CoffreTesting
import Foundation
import GRDB
import Synchronization
import Testing

/// What the start after an unclean stop does with a damaged vault: it may report, never guess.
/// (The common case, orphans and temporaries removed and missing blobs counted, is
/// `VaultTests.recoveryRemovesTemporariesAndOrphansAfterAnUncleanStop`.)
@Suite struct RecoveryTests {
    func blobPath(_ fixture: VaultFixture, _ id: String) -> String {
        fixture.state + "/blobs/" + id.prefix(2) + "/" + id
    }

    @Test func aRowTheIndexCannotBeReadWholeFromKeepsEveryBlob() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let damaged = try await fixture.store(Array("damaged".utf8))
        let kept = try await fixture.store(Array("kept".utf8))
        // Its blob version is no longer a number: which blob the row names cannot be read.
        try await fixture.vault.sqlite.pool.write { db in
            try db.execute(sql: "UPDATE document SET blob_version = 'x' WHERE id = ?", arguments: [damaged.id.value])
        }
        let orphanID = SecureRandom.hexIdentifier()
        #expect(FileManager.default.createFile(atPath: blobPath(fixture, orphanID), contents: Data([1, 2, 3])))
        try await fixture.reopen()
        let recovery = fixture.vault.recovery
        #expect(!recovery.cleanStop)
        #expect(recovery.unreadableRows == 1)
        // The damaged row's blob and the true orphan alike: kept, not removed.
        #expect(recovery.orphansRemoved == 0)
        #expect(recovery.orphansKept == 2)
        #expect(recovery.missingBlobs == 0)
        #expect(FileManager.default.fileExists(atPath: blobPath(fixture, damaged.id.value)))
        #expect(FileManager.default.fileExists(atPath: blobPath(fixture, orphanID)))
        #expect(try await fixture.read(kept.id) == Array("kept".utf8))
    }

    @Test func verifyReportsADamagedRowWithoutStoppingTheProcess() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let damaged = try await fixture.store(Array("damaged".utf8))
        try await fixture.vault.sqlite.pool.write { db in
            try db.execute(sql: "UPDATE document SET blob_version = 'x' WHERE id = ?", arguments: [damaged.id.value])
        }
        // Old enough not to be a store in flight: had the row not been damaged, its blob would
        // be judged as an orphan could be.
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: blobPath(fixture, damaged.id.value))
        // A typed read of each row's blob name stopped the process on a value of another type.
        // The document itself reads its version as SQLite converts it (0 here), so it still
        // opens and verifies; the row is reported, and its blob is not called an orphan.
        let verification = try await fixture.vault.verifyContents()
        #expect(verification.documentsChecked == 1)
        #expect(
            verification.problems == [
                "index: 1 document row(s) whose id or blob version cannot be read; 1 blob(s) no readable row names may be theirs (not counted as orphans)"
            ])
        #expect(verification.orphanBlobs == 0)
    }

    @Test func verifyReadsEveryPageOfDossiersAndOfDocuments() async throws {
        let fixture = try await VaultFixture()
        let page = Vault.verifyPageSize
        // A page of dossiers and one more, and one dossier with a page of documents and one more.
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        // Sixteen at a time: the fixture's key arena holds 256 keys.
        for first in stride(from: 0, through: page, by: 16) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in first..<min(first + 16, page + 1) {
                    group.addTask { _ = try await fixture.store([UInt8(n % 256)]) }
                    guard n > 0 else { continue }
                    group.addTask {
                        let ins = INS(Identities.ins(n))!
                        _ = try await fixture.vault.createDossier(for: ins)
                        _ = try await fixture.vault.storeDocument(
                            in: ins,
                            NewDocument(documentClass: .compteRendu, title: nil, typeCode: nil, careDate: nil, author: VaultFixture.author),
                            content: VaultFixture.content([UInt8(n % 256)]), declaredLength: 1)
                    }
                }
                try await group.waitForAll()
            }
        }
        let checked = Counter()
        let verification = try await fixture.vault.verifyContents { done, total in checked.record(done, total) }
        #expect(verification.problems == [])
        #expect(verification.dossiersChecked == page + 1)
        #expect(verification.documentsChecked == 2 * page + 1)
        let documents = 2 * page + 1
        let last = try #require(checked.last)
        #expect(last.0 == documents && last.1 == documents)
        // A sample reads that many, wherever they are.
        #expect(try await fixture.vault.verifyContents(sample: 7).documentsChecked == 7)
    }

    /// The last progress report.
    final class Counter: Sendable {
        private let value = Mutex<(Int, Int)?>(nil)
        func record(_ done: Int, _ total: Int) { value.withLock { $0 = (done, total) } }
        var last: (Int, Int)? { value.withLock { $0 } }
    }

    @Test func aDirectoryNamedLikeABlobIsLeftAloneAndTheStartGoesOn() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let kept = try await fixture.store(Array("kept".utf8))
        let directory = blobPath(fixture, SecureRandom.hexIdentifier())
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        try await fixture.reopen()
        #expect(fixture.vault.recovery.orphansRemoved == 0)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect(try await fixture.read(kept.id) == Array("kept".utf8))
    }
}
