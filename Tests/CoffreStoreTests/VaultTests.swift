import CoffreCrypto
import CoffreDomain
@testable import CoffreStore
import CoffreTesting
import Foundation
import Synchronization
import Testing

@Suite struct VaultTests {
    @Test func storeAndReadBackAcrossChunkSizes() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        // Past 50,000 bytes: reads go past the reader's 128 KiB prefetch, and stores span
        // several write batches, at record boundaries and inside records.
        let sizes = [0, 1, 4095, 4096, 4097, 50_000, 140_000, 4096 * 400, 2_500_001]
        for size in sizes {
            let bytes = SecureRandom.bytes(size)
            let record = try await fixture.store(bytes)
            #expect(record.size == Int64(size))
            #expect(record.sha256 == SHA256Hasher.hash(bytes))
            #expect(try await fixture.read(record.id) == bytes)
            let shown = try await fixture.vault.document(record.id, in: VaultFixture.patient)
            #expect(shown.title == "Compte rendu")
            #expect(shown.typeCode == "11502-2")
            #expect(shown.careDate?.value == "2026-01-02")
            #expect(shown.author == VaultFixture.author)
        }
        #expect(try await fixture.vault.documents(in: VaultFixture.patient).count == sizes.count)
    }

    @Test func oneDossierPerPatient() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        await #expect(throws: StoreError.self) { try await fixture.vault.createDossier(for: VaultFixture.patient) }
        let stranger = INS("269029934173285")!
        await #expect(throws: StoreError.self) { try await fixture.vault.dossier(for: stranger) }
    }

    @Test func refusedUploadsLeaveNothingBehind() async throws {
        let fixture = try await VaultFixture(maxDocumentSize: 10_000)
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        // Past the limit, declared or not.
        let declaredTooLarge = await #expect(throws: StoreError.self) { try await fixture.store(SecureRandom.bytes(20_000)) }
        #expect(declaredTooLarge?.code == .tooLarge)
        let streamedTooLarge = await #expect(throws: StoreError.self) {
            try await fixture.store(SecureRandom.bytes(20_000), declared: 5_000)
        }
        #expect(streamedTooLarge?.code == .tooLarge)
        // Cut off mid-stream, and shorter than declared.
        let cutOff = await #expect(throws: StoreError.self) { try await fixture.store(SecureRandom.bytes(8_000), failAfter: 3_000) }
        #expect(cutOff?.code == .incompleteUpload)
        let short = await #expect(throws: StoreError.self) { try await fixture.store(SecureRandom.bytes(3_000), declared: 8_000) }
        #expect(short?.code == .incompleteUpload)
        let files = fixture.blobFiles()
        #expect(files.committed.isEmpty)
        #expect(files.temporary.isEmpty)
        #expect(try await fixture.vault.documents(in: VaultFixture.patient, includeSuperseded: true).isEmpty)
    }

    /// Synchronous look-ups share no connection with asynchronous reads, which give theirs back
    /// only on the cooperative pool: with one shared pool, many of both at once left every
    /// cooperative thread waiting for a connection that could never come back (the load drill
    /// hung so). A watchdog on a Dispatch thread turns a hang into a failure.
    @Test func lookUpsAndReadsNeverStarveEachOther() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        for _ in 0..<20 { _ = try await fixture.store(SecureRandom.bytes(100)) }
        let finished = ManagedAtomicFlag()
        DispatchQueue.global().asyncAfter(deadline: .now() + 120) {
            if !finished.isSet { fatalError("look-ups and reads deadlocked") }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<400 {
                group.addTask {
                    if index % 2 == 0 {
                        _ = try await fixture.vault.dossier(for: VaultFixture.patient)
                    } else {
                        #expect(try await fixture.vault.documents(in: VaultFixture.patient).count == 20)
                    }
                }
            }
            try await group.waitForAll()
        }
        finished.set()
    }

    @Test func damagedBlobsAreNeverServed() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let small = try await fixture.store(SecureRandom.bytes(100))
        let large = try await fixture.store(SecureRandom.bytes(20_000))
        let smallPath = fixture.blobFiles().committed.first { $0.hasSuffix(small.id.value) }!
        let largePath = fixture.blobFiles().committed.first { $0.hasSuffix(large.id.value) }!

        // A flipped byte in a one-record blob: refused before any byte is returned.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: smallPath))
        bytes[bytes.count - 20] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: smallPath))
        await #expect(throws: StoreError.self) { try await fixture.vault.openContent(small.id, in: VaultFixture.patient) }

        // A large blob truncated at a record boundary: the stream fails at its end.
        let original = try Data(contentsOf: URL(fileURLWithPath: largePath))
        try original.prefix(BlobHeader.byteCount + 2 * (4096 + BlobHeader.recordOverhead)).write(to: URL(fileURLWithPath: largePath))
        await #expect(throws: StoreError.self) { try await fixture.read(large.id) }

        // Another document's blob in its place (swapped): wrong key and binding, refused.
        try Data(contentsOf: URL(fileURLWithPath: smallPath)).write(to: URL(fileURLWithPath: largePath))
        await #expect(throws: StoreError.self) { try await fixture.read(large.id) }
    }

    /// A document whose length is a multiple of the chunk size ends with an empty FINAL record:
    /// damage there must stop the content before its last bytes, not after them.
    @Test func aDamagedTrailerWithholdsTheLastContent() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let bytes = SecureRandom.bytes(3 * 4096)
        let document = try await fixture.store(bytes)
        let path = fixture.blobFiles().committed.first { $0.hasSuffix(document.id.value) }!
        var blob = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(blob.count == BlobHeader.byteCount + 3 * (4096 + BlobHeader.recordOverhead) + BlobHeader.recordOverhead)
        blob[blob.count - 1] ^= 0x01
        try blob.write(to: URL(fileURLWithPath: path))

        let content = try await fixture.vault.openContent(document.id, in: VaultFixture.patient)
        var delivered: [UInt8] = []
        let failure = await #expect(throws: StoreError.self) {
            while let piece = try await content.next() { delivered += piece }
        }
        await content.close()
        #expect(failure?.code == .integrity)
        #expect(delivered.count < bytes.count, "the last record must be held back until the FINAL one is checked")
        #expect(bytes.starts(with: delivered))
    }

    @Test func recoveryRemovesTemporariesAndOrphansAfterAnUncleanStop() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let kept = try await fixture.store(Array("kept".utf8))
        let lost = try await fixture.store(Array("lost".utf8))
        // A crash between link and commit leaves a blob no row names (a new one, or a
        // re-encryption's); a crash before the link leaves a temporary file. A blob that is
        // younger than the start is an orphan too: nothing is in flight before the vault serves.
        let orphanID = SecureRandom.hexIdentifier()
        let shard = fixture.state + "/blobs/" + orphanID.prefix(2) + "/"
        let orphan = shard + orphanID
        let reencrypted = fixture.state + "/blobs/" + kept.id.value.prefix(2) + "/" + kept.id.value + ".3"
        let temporary = fixture.state + "/blobs/tmp/" + orphanID + ".partial"
        // Not a blob name, or a blob name in another shard's directory: left alone (judged as
        // an orphan, the misplaced copy would be removed under its own shard's path, where
        // `kept`'s real blob is).
        let stranger = shard + "README"
        let keptShard = kept.id.value.prefix(2)
        let misplaced = fixture.state + "/blobs/" + (keptShard == "00" ? "01" : "00") + "/" + kept.id.value
        for path in [orphan, reencrypted, temporary, stranger, misplaced] {
            #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
        }
        // A document whose blob is gone is reported, not hidden.
        try FileManager.default.removeItem(atPath: fixture.state + "/blobs/" + lost.id.value.prefix(2) + "/" + lost.id.value)
        try await fixture.reopen()
        let recovery = fixture.vault.recovery
        #expect(!recovery.cleanStop)
        #expect(recovery.temporariesRemoved == 1)
        #expect(recovery.orphansRemoved == 2)
        #expect(recovery.missingBlobs == 1)
        for path in [orphan, reencrypted, temporary] { #expect(!FileManager.default.fileExists(atPath: path)) }
        #expect(FileManager.default.fileExists(atPath: stranger))
        #expect(FileManager.default.fileExists(atPath: misplaced))
        #expect(try await fixture.read(kept.id) == Array("kept".utf8))
    }

    @Test func noPersonalDataInPlaintextAnywhereInTheStateDirectory() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let title = "MARKER-TITLE-Échographie-7f3a"
        let content = Array("MARKER-CONTENT-glycémie-91b2 ".utf8) + SecureRandom.bytes(10)
        _ = try await fixture.store(content, title: title)
        for path in fixture.directory.allFiles() {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            for marker in [VaultFixture.patient.value, title, "MARKER-CONTENT"] {
                #expect(data.range(of: Data(marker.utf8)) == nil, "\(marker) found in \(path)")
            }
        }
    }

    @Test func keysAreCheckedAtStart() async throws {
        let fixture = try await VaultFixture()
        // A wrong master key for an existing index is refused, not silently used.
        let directory = try TemporaryDirectory(prefix: "coffre-state")
        try MasterKeyring.writeNewKey(version: 1, in: directory.path + "/keys")
        try MasterKeyring.writeNewKey(version: 1, in: directory.path + "/other-keys")
        _ = try await VaultFixture.open(
            state: directory.path + "/state", keys: directory.path + "/keys", pool: fixture.pool, arena: fixture.arena, max: 1000)
        let wrongKey = await #expect(throws: StoreError.self) {
            _ = try await VaultFixture.openOnceReleased(
                state: directory.path + "/state", keys: directory.path + "/other-keys", pool: fixture.pool, arena: fixture.arena, max: 1000)
        }
        #expect(wrongKey?.code == .keys)
        // A key file others can read is refused.
        let loose = try TemporaryDirectory(prefix: "coffre-keys")
        try MasterKeyring.writeNewKey(version: 1, in: loose.path)
        chmod(loose.path + "/coffre-master-1", 0o644)
        #expect(throws: StoreError.self) { try MasterKeyring.load(from: [loose.path], arena: fixture.arena) }
        // No key at all is refused.
        let empty = try TemporaryDirectory(prefix: "coffre-keys")
        #expect(throws: StoreError.self) { try MasterKeyring.load(from: [empty.path], arena: fixture.arena) }
    }
}

/// A flag set once, read from any thread.
final class ManagedAtomicFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}
