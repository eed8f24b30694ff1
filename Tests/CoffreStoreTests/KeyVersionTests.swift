import CoffreCrypto
import CoffreDomain
@testable import CoffreStore
import CoffreTesting
import Foundation
import NIOCore
import Testing

/// Master key versions, rotation in batches, retirement and rekeying, on a real vault.
@Suite struct KeyVersionTests {
    /// `count` dossiers for distinct patients (INS built from 1…count).
    static func makeDossiers(_ fixture: VaultFixture, count: Int) async throws -> [INS] {
        var patients: [INS] = []
        for n in 1...count {
            let ins = INS(Identities.ins(n))!
            _ = try await fixture.vault.createDossier(for: ins)
            patients.append(ins)
        }
        return patients
    }

    @Test func rotationRewrapsInBatchesAndResumesAfterARestart() async throws {
        let fixture = try await VaultFixture()
        let patients = try await Self.makeDossiers(fixture, count: 25)
        let document = SecureRandom.bytes(10_000)
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let stored = try await fixture.store(document)

        // A new file is only available until rotation makes it active.
        try MasterKeyring.writeNewKey(version: 2, in: fixture.keys)
        var status = try await fixture.vault.reloadMasterKeys()
        #expect(status.activeVersion == 1)
        #expect(status.versions.map(\.state) == ["active", "available"])
        #expect(status.versions[0].dossierKeys == 26)
        #expect(status.versions[0].vaultKeys == 4)

        status = try await fixture.vault.startRotation()
        #expect(status.activeVersion == 2)
        #expect(status.versions[1].vaultKeys == 4, "the vault's own keys are rewrapped at once")
        #expect(status.rotation?.total == 26)
        // New dossiers are wrapped by the new version at once.
        _ = try await fixture.vault.createDossier(for: INS(Identities.ins(500))!)
        let first = try #require(try await fixture.vault.rotateBatch(limit: 10))
        #expect(first.rewrapped == 10 && !first.finished)

        // A restart in the middle: the rotation is still pending, and goes on from its cursor.
        try await fixture.reopen()
        #expect(try await fixture.vault.rotationPending())
        #expect(try await fixture.vault.masterKeyStatus().activeVersion == 2)
        var steps: [RotationStep] = []
        while let step = try await fixture.vault.rotateBatch(limit: 10) {
            steps.append(step)
            if step.finished { break }
        }
        #expect(steps.reduce(0) { $0 + $1.rewrapped } == 16, "each key is rewrapped once: \(steps)")
        #expect(try await fixture.vault.rotateBatch(limit: 10) == nil)
        status = try await fixture.vault.masterKeyStatus()
        #expect(status.versions[0].wrappedKeys == 0)
        #expect(status.versions[1].dossierKeys == 27)
        #expect(status.rotation?.done == 26 && status.rotation?.finishedAt != nil)

        // Everything still opens, and with version 1 retired and its file gone, after a restart.
        _ = try await fixture.vault.retireMasterKey(version: 1)
        try FileManager.default.removeItem(atPath: fixture.keys + "/coffre-master-1")
        try await fixture.reopen()
        for ins in patients { _ = try await fixture.vault.dossier(for: ins) }
        #expect(try await fixture.read(stored.id) == document)
        #expect(try await fixture.vault.verifyContents().problems.isEmpty)
    }

    @Test func retirementIsRefusedWhileAVersionIsActiveOrInUse() async throws {
        let fixture = try await VaultFixture()
        _ = try await Self.makeDossiers(fixture, count: 3)
        let active = await #expect(throws: StoreError.self) { try await fixture.vault.retireMasterKey(version: 1) }
        #expect(active?.code == .keyInUse)
        let unknown = await #expect(throws: StoreError.self) { try await fixture.vault.retireMasterKey(version: 7) }
        #expect(unknown?.code == .unknownKeyVersion)

        try MasterKeyring.writeNewKey(version: 2, in: fixture.keys)
        _ = try await fixture.vault.startRotation()
        _ = try await fixture.vault.rotateBatch(limit: 2)
        let inUse = await #expect(throws: StoreError.self) { try await fixture.vault.retireMasterKey(version: 1) }
        #expect(inUse?.code == .keyInUse)
        #expect(inUse?.message.contains("still wraps 1 key") == true, "\(String(describing: inUse))")
        while let step = try await fixture.vault.rotateBatch(limit: 2), !step.finished {}
        let status = try await fixture.vault.retireMasterKey(version: 1)
        #expect(status.versions[0].state == "retired" && !status.versions[0].installed)
        // Retiring twice is harmless; nothing newer installed means nothing to rotate.
        _ = try await fixture.vault.retireMasterKey(version: 1)
        let nothing = await #expect(throws: StoreError.self) { try await fixture.vault.startRotation() }
        #expect(nothing?.code == .noNewerKey)
    }

    @Test(
        arguments: [
            ("coffre-master-1", 1), ("coffre-master-10", 10), ("coffre-master-4294967295", 4_294_967_295),
            ("coffre-master-0", nil), ("coffre-master-01", nil), ("coffre-master-+1", nil), ("coffre-master--1", nil),
            ("coffre-master-", nil), ("coffre-master-1~", nil), ("coffre-master-1.bak", nil), ("coffre-master- 1", nil),
            ("coffre-master-4294967296", nil), ("coffre-master-١", nil),
        ] as [(String, UInt32?)])
    func aMasterKeyFileNameGivesOneVersionOrNone(name: String, version: UInt32?) {
        #expect(MasterKeyring.version(inFileName: name) == version)
    }

    @Test func startRefusesAWrongFileOrAMissingVersion() async throws {
        let fixture = try await VaultFixture()
        _ = try await Self.makeDossiers(fixture, count: 3)
        try MasterKeyring.writeNewKey(version: 2, in: fixture.keys)
        _ = try await fixture.vault.startRotation()
        _ = try await fixture.vault.rotateBatch(limit: 1)

        // Version 1 still wraps two dossier keys: without its file the vault does not open.
        let saved = fixture.directory.path + "/saved-master-1"
        try FileManager.default.moveItem(atPath: fixture.keys + "/coffre-master-1", toPath: saved)
        let missing = await #expect(throws: StoreError.self) { try await fixture.reopen() }
        #expect(missing?.message.contains("2 key(s) are wrapped by master key version 1, which is not installed") == true)

        // Another key under a known version number is refused, not tried.
        try MasterKeyring.writeNewKey(version: 1, in: fixture.keys)
        let wrong = await #expect(throws: StoreError.self) { try await fixture.reopen() }
        #expect(wrong?.message.contains("is not the master key this vault knows as version 1") == true)

        try FileManager.default.removeItem(atPath: fixture.keys + "/coffre-master-1")
        try FileManager.default.moveItem(atPath: saved, toPath: fixture.keys + "/coffre-master-1")
        try await fixture.reopen()
        #expect(try await fixture.vault.rotationPending())
    }

    @Test func rekeyKeepsDocumentsTraceAndNotificationsReadable() async throws {
        let fixture = try await VaultFixture()
        let dossier = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let contents = [SecureRandom.bytes(100), SecureRandom.bytes(20_000)]
        var ids: [DocumentID] = []
        for bytes in contents { ids.append(try await fixture.store(bytes).id) }
        let detail = TraceDetail(actorRole: "patient", actorID: VaultFixture.patient.value, rule: "patient.own-dossier")
        try await fixture.vault.recordTrace(action: "document.list", outcome: .allowed, detail: detail, dossier: dossier)
        try await fixture.vault.notify(dossier, recipient: .patient, kind: .documentAdded, message: "before the rekey")
        let blobsBefore = Set(fixture.blobFiles().committed)

        let plain = try await fixture.vault.rekeyDossier(for: VaultFixture.patient, reencrypt: false)
        #expect(plain.keyGeneration == 2 && plain.documentKeysRewrapped == 2 && plain.blobsReencrypted == 0)
        #expect(Set(fixture.blobFiles().committed) == blobsBefore, "without --reencrypt no blob is written")

        let full = try await fixture.vault.rekeyDossier(for: VaultFixture.patient, reencrypt: true)
        #expect(full.keyGeneration == 3 && full.blobsReencrypted == 2)
        let blobsAfter = Set(fixture.blobFiles().committed)
        #expect(blobsAfter.isDisjoint(with: blobsBefore), "every blob was rewritten under a new name and the old ones removed")
        #expect(blobsAfter.allSatisfy { $0.hasSuffix(".1") })
        #expect(fixture.blobFiles().temporary.isEmpty)

        let reopened = try await fixture.vault.dossier(for: VaultFixture.patient)
        for (id, bytes) in zip(ids, contents) { #expect(try await fixture.read(id) == bytes) }
        // The entry sealed under generation 1 still opens, through the archived key.
        let entries = try await fixture.vault.traceEntries(for: reopened)
        #expect(entries.first { $0.action == "document.list" }?.detail == detail)
        let notices = try await fixture.vault.notifications(for: reopened, recipient: .patient, includeAcknowledged: true)
        #expect(notices.map(\.message) == ["before the rekey"])
        #expect(try await fixture.vault.verifyContents().problems.isEmpty)

        // The rekeyed dossier takes changes under its new key.
        _ = try await fixture.vault.rekeyDossier(for: VaultFixture.patient, reencrypt: false)
        let masked = try await fixture.vault.change(ids[0], in: VaultFixture.patient, .mask(true))
        #expect(masked.masked)
    }

    /// A crash during `rekey --reencrypt` leaves either new blobs no row names yet (before the
    /// switch commits) or old ones (after it): both are orphans the next start removes, and the
    /// document is whole either way.
    @Test func leftoversOfAnInterruptedReencryptionAreRemovedAtStart() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let bytes = SecureRandom.bytes(30_000)
        let id = try await fixture.store(bytes).id
        _ = try await fixture.vault.rekeyDossier(for: VaultFixture.patient, reencrypt: true)
        let shard = fixture.state + "/blobs/" + id.value.prefix(2) + "/"
        let current = shard + id.value + ".1"
        #expect(FileManager.default.fileExists(atPath: current))
        // The old blob (crash after the switch) and a next one (crash before it).
        for leftover in [shard + id.value, shard + id.value + ".2"] {
            try FileManager.default.copyItem(atPath: current, toPath: leftover)
        }
        let report = try await fixture.vault.verifyContents()
        #expect(report.orphanBlobs == 0, "a minute has not passed: they may be stores in flight")
        try await fixture.reopen()  // no clean-stop marker: the start reconciles blobs
        #expect(fixture.blobFiles().committed == [current])
        #expect(try await fixture.read(id) == bytes)
    }

    @Test func aStoreRacingARekeyIsRefusedAndLeavesNothing() async throws {
        let fixture = try await VaultFixture()
        _ = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let (bytes, continuation) = AsyncThrowingStream.makeStream(of: ByteBuffer.self)
        let (pulls, pulled) = AsyncStream.makeStream(of: Void.self)
        let upload = PullSignallingUpload(base: bytes, pulled: pulled)
        let store = Task {
            // Should the store fail before it pulls anything, the wait below ends too.
            defer { pulled.finish() }
            return try await fixture.vault.storeDocument(
                in: VaultFixture.patient, NewDocument(documentClass: .compteRendu, author: VaultFixture.author), content: upload,
                declaredLength: 2_000)
        }
        continuation.yield(ByteBuffer(bytes: SecureRandom.bytes(1_000)))
        // The store pulls content only once it has opened the dossier (generation 1): after its
        // first pull, it is streaming when the rekey lands.
        for await _ in pulls { break }
        _ = try await fixture.vault.rekeyDossier(for: VaultFixture.patient, reencrypt: false)
        continuation.yield(ByteBuffer(bytes: SecureRandom.bytes(1_000)))
        continuation.finish()
        let refused = await #expect(throws: StoreError.self) { try await store.value }
        #expect(refused?.code == .conflict)
        #expect(fixture.blobFiles().committed.isEmpty && fixture.blobFiles().temporary.isEmpty)
        #expect(try await fixture.vault.documents(in: VaultFixture.patient).isEmpty)
    }
}

/// An upload that says each time the store asks it for bytes.
private struct PullSignallingUpload: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    typealias Failure = any Error
    let base: AsyncThrowingStream<ByteBuffer, any Error>
    let pulled: AsyncStream<Void>.Continuation

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncThrowingStream<ByteBuffer, any Error>.AsyncIterator
        let pulled: AsyncStream<Void>.Continuation

        mutating func next() async throws -> ByteBuffer? {
            pulled.yield()
            return try await base.next()
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), pulled: pulled) }
}
