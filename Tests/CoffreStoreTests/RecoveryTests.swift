import CoffreCrypto
import CoffreDomain
@testable import CoffreStore
import Foundation
import GRDB
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
        try await fixture.vault.index.write("damage a row") { db in
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
        try await fixture.vault.index.write("damage a row") { db in
            try db.execute(sql: "UPDATE document SET blob_version = 'x' WHERE id = ?", arguments: [damaged.id.value])
        }
        // A typed read of each row's blob name stopped the process on a value of another type.
        // The document itself reads its version as SQLite converts it (0 here), so it still
        // opens and verifies; the row is reported.
        let verification = try await fixture.vault.verifyContents()
        #expect(verification.documentsChecked == 1)
        #expect(verification.problems == ["index: 1 document row(s) whose id or blob version cannot be read"])
        #expect(verification.orphanBlobs == 0)
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
