import CoffreCrypto
import CoffreDomain
@testable import CoffreStore
import CoffreTesting
import Foundation
import Logging
import NIOCore
import Synchronization
import Testing

/// The pipeline over a real vault: what a store, a change and a creation leave in the index,
/// the trace and the outbox, including when another operation changes the dossier first.
@Suite struct OperationPipelineTests {
    static let patient = Caller.person(Actor(subject: .patient(VaultFixture.patient), issuer: "test"))
    static let rpps = RPPS(Identities.rpps(1))!
    static let doctor = Caller.person(
        Actor(subject: .professional(rpps, profession: Profession("10")!, specialty: nil, organization: nil), issuer: "test"))
    static let policy = AccessPolicy(
        matrix: HabilitationMatrix(version: "test-1", rows: [.init(profession: "10", classes: ["*"])]))

    /// A vault with the patient's dossier, whose médecin traitant is `doctor`.
    static func pipeline(maxDocumentSize: Int64 = 10_000) async throws -> (VaultFixture, OperationPipeline) {
        let fixture = try await VaultFixture(maxDocumentSize: maxDocumentSize)
        let pipeline = OperationPipeline(vault: fixture.vault, policy: policy)
        _ = try await pipeline.perform(.createDossier, on: VaultFixture.patient, by: patient)
        _ = try await pipeline.perform(.setAttendingDoctor(rpps, profession: .medecin), on: VaultFixture.patient, by: patient)
        return (fixture, pipeline)
    }

    static func upload(_ title: String) -> DocumentUpload {
        DocumentUpload(documentClass: .compteRendu, title: title, mediaType: "text/plain")
    }

    /// The dossier's trace, oldest first, as the patient reads it.
    static func trace(_ pipeline: OperationPipeline) async throws -> [TraceRecord] {
        let dossier = try await pipeline.vault.dossier(for: VaultFixture.patient)
        return try await pipeline.vault.traceEntries(for: dossier)
    }

    /// A store commits its row, its entry (naming the new document) and its notices together; a
    /// store whose content never becomes a document commits its decision with the error, its
    /// access notices and none of the document's.
    @Test func aStoreCommitsItsDocumentEntryAndNoticesTogether() async throws {
        let (fixture, pipeline) = try await Self.pipeline()
        func store(_ bytes: [UInt8], failAfter: Int? = nil, _ operation: DossierOperation) async throws -> DocumentRecord {
            try await pipeline.store(
                operation, on: VaultFixture.patient, by: Self.doctor, content: VaultFixture.content(bytes, failAfter: failAfter),
                declaredLength: Int64(bytes.count))
        }
        let before = try await Self.trace(pipeline).count
        // Concurrent stores share commits; each has its own entry.
        let stored = try await withThrowingTaskGroup(of: DocumentRecord.self) { group in
            for n in 0..<6 { group.addTask { try await store(SecureRandom.bytes(3_000), .addDocument(Self.upload("doc \(n)"))) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let tooLarge = await #expect(throws: StoreError.self) {
            try await store(SecureRandom.bytes(20_000), .addDocument(Self.upload("x")))
        }
        #expect(tooLarge?.code == .tooLarge)
        let cutOff = await #expect(throws: StoreError.self) {
            try await store(SecureRandom.bytes(8_000), failAfter: 3_000, .addDocument(Self.upload("x")))
        }
        #expect(cutOff?.code == .incompleteUpload)
        let replacement = try await store(SecureRandom.bytes(100), .replaceDocument(stored[0].id, Self.upload("v2")))
        // The replaced version is no longer current: refused on the facts, and traced so.
        let refused = await #expect(throws: Refusal.self) {
            try await store(SecureRandom.bytes(100), .replaceDocument(stored[0].id, Self.upload("v3")))
        }
        #expect(refused?.code == "document_conflict")

        let entries = try await Self.trace(pipeline).dropFirst(before)
        #expect(entries.count == 10, "one entry per store: \(entries.map(\.action))")
        let named = Set(entries.compactMap { $0.detail?.documentID })
        #expect(named.isSuperset(of: stored.map(\.id.value) + [replacement.id.value]))
        #expect(entries.compactMap { $0.detail?.errorCode }.sorted() == ["document_conflict", "payload_too_large", "upload_incomplete"])
        let notices = try await pipeline.vault.notifications(
            for: try await pipeline.vault.dossier(for: VaultFixture.patient), recipient: .patient, includeAcknowledged: true)
        #expect(notices.filter { $0.kind == .documentAdded }.count == 6)
        #expect(notices.filter { $0.kind == .documentReplaced }.map(\.documentID) == [replacement.id.value])
        #expect(Set(notices.compactMap(\.documentID)).isSubset(of: Set(stored.map(\.id.value) + [replacement.id.value])))
        #expect(try await fixture.vault.documents(in: VaultFixture.patient, includeSuperseded: true).count == 7)
        #expect(fixture.blobFiles().committed.count == 7, "no blob of a failed or refused store is left")
        #expect(try await fixture.vault.verifyTrace().problems.isEmpty)
    }

    /// The patient asks that new documents be masked while a professional's upload is in
    /// flight: the store, decided on the dossier before the change, is decided again when it
    /// commits, and its document is masked; its entry is written once.
    @Test func aStoreRacedByAChangeIsDecidedAgainOnTheDossierItCommitsTo() async throws {
        let (fixture, pipeline) = try await Self.pipeline()
        let (content, feed) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let bytes = SecureRandom.bytes(2_000)
        feed.yield(ByteBuffer(bytes: bytes[..<1_000]))
        let before = try await Self.trace(pipeline).count
        async let storing = pipeline.store(
            .addDocument(Self.upload("raced")), on: VaultFixture.patient, by: Self.doctor, content: content, declaredLength: 2_000)
        // The store has loaded its facts once its first bytes are read; change the dossier then.
        try await Task.sleep(for: .milliseconds(100))
        _ = try await pipeline.perform(
            .setPreferences(PreferencesChange(maskNewDocuments: true)), on: VaultFixture.patient, by: Self.patient)
        feed.yield(ByteBuffer(bytes: bytes[1_000...]))
        feed.finish()
        let document = try await storing
        #expect(document.masked, "decided again on the dossier that masks new documents")
        let entries = try await Self.trace(pipeline).dropFirst(before)
        #expect(entries.map(\.action) == ["dossier.manage", "document.add"])
        #expect(entries.last?.detail?.documentID == document.id.value)
        #expect(fixture.blobFiles().committed.count == 1)
    }

    /// Patients' software retrying a creation: exactly one creates the dossier, the others are
    /// told it exists, and every entry is in the dossier's trace, sealed under its own key.
    @Test func concurrentCreationsMakeOneDossierAndTraceEveryAttempt() async throws {
        let fixture = try await VaultFixture()
        let pipeline = OperationPipeline(vault: fixture.vault, policy: Self.policy)
        let outcomes = await withTaskGroup(of: String.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    do {
                        _ = try await pipeline.perform(.createDossier, on: VaultFixture.patient, by: Self.patient)
                        return "created"
                    } catch let refusal as Refusal {
                        return refusal.code
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == "created" }.count == 1)
        #expect(outcomes.filter { $0 == "dossier_exists" }.count == 7, "\(outcomes)")
        let entries = try await Self.trace(pipeline)
        #expect(entries.count == 8)
        #expect(entries.allSatisfy { $0.detail != nil }, "every entry opens with the dossier's key")
        #expect(entries.filter { $0.outcome == "allowed" }.count == 1)
    }

    /// Two changes to one dossier, each decided on the dossier as the other left it: blocking
    /// a professional the patient names médecin traitant at the same moment never leaves the
    /// médecin traitant blocked.
    @Test func concurrentChangesAreEachDecidedOnTheStateTheyApplyTo() async throws {
        let (fixture, pipeline) = try await Self.pipeline()
        defer { withExtendedLifetime(fixture) {} }
        let other = RPPS(Identities.rpps(2))!
        for _ in 0..<10 {
            async let naming: Void = {
                _ = try? await pipeline.perform(
                    .setAttendingDoctor(other, profession: .medecin), on: VaultFixture.patient, by: Self.patient)
            }()
            async let blocking: Void = {
                _ = try? await pipeline.perform(
                    .changeAccessList(.blocked, member: .professional(other), add: true), on: VaultFixture.patient, by: Self.patient)
            }()
            _ = await (naming, blocking)
            let settings = try await pipeline.vault.dossier(for: VaultFixture.patient).settings
            #expect(!(settings.attendingDoctor == other.value && settings.blocked.contains(other.value)))
            _ = try await pipeline.perform(.setAttendingDoctor(Self.rpps, profession: .medecin), on: VaultFixture.patient, by: Self.patient)
            _ = try? await pipeline.perform(
                .changeAccessList(.blocked, member: .professional(other), add: false), on: VaultFixture.patient, by: Self.patient)
        }
    }

    /// A refusal for a patient who has no dossier names no dossier, and so has no dossier key to
    /// seal its caller under: the trace keeps who was refused sealed under the vault's own key,
    /// with nothing identifying in clear.
    @Test func aRefusalForAPatientWithoutADossierKeepsTheCallerSealed() async throws {
        let fixture = try await VaultFixture()
        let pipeline = OperationPipeline(vault: fixture.vault, policy: Self.policy)
        let stranger = INS(Identities.ins(77))!
        for (caller, id) in [(Self.patient, VaultFixture.patient.value), (Self.doctor, Self.rpps.value)] {
            let refusal = await #expect(throws: Refusal.self) { try await pipeline.perform(.readDossier, on: stranger, by: caller) }
            #expect(refusal?.code == "access_denied")
            let row = try #require(try await fixture.vault.index.traceEntries(from: 1, limit: 100).last)
            #expect(row.dossierId == nil && row.outcome == "denied")
            #expect(row.detail?.contains(id) == false, "nothing identifying in clear: \(row.detail ?? "")")
            let sealed = try #require(fixture.vault.unattachedDetail(of: row))
            #expect(
                sealed.actorID == id
                    && sealed.rule == row.detail.flatMap { try? JSONDecoder().decode(TraceDetail.self, from: Data($0.utf8)) }?.rule)
        }
        #expect(try await fixture.vault.verifyTrace().problems.isEmpty)
    }

    /// The index records each single-use assertion with the operation it allowed: presented
    /// again (to another daemon sharing the index, or after a restart), it is refused and
    /// nothing of the second operation is written.
    @Test func anAssertionRecordedByTheIndexIsRefusedThereafter() async throws {
        let (fixture, pipeline) = try await Self.pipeline()
        let vault = fixture.vault
        let use = AssertionUse(fingerprint: SecureRandom.bytes(16), forgettableAt: Int64(Date().timeIntervalSince1970) + 300)
        let once = Caller.person(Actor(subject: .patient(VaultFixture.patient), issuer: "test", assertion: use))
        _ = try await pipeline.perform(.readDossier, on: VaultFixture.patient, by: once)
        let before = try await vault.index.traceEntries(from: 1, limit: 1_000).count
        let again = await #expect(throws: StoreError.self) {
            try await pipeline.perform(.setPreferences(PreferencesChange(notifyEveryAccess: true)), on: VaultFixture.patient, by: once)
        }
        #expect(again?.code == .assertionReplayed)
        await #expect(throws: StoreError.self) { try await pipeline.perform(.readDossier, on: VaultFixture.patient, by: once) }
        #expect(try await vault.index.traceEntries(from: 1, limit: 1_000).count == before)
        #expect(try await vault.dossier(for: VaultFixture.patient).settings.notifyEveryAccess == false)
        withExtendedLifetime(fixture) {}
    }

    /// What a change was decided on is read again in its commit: the dossier's row, and the
    /// document it names. A new document elsewhere in the dossier overtakes nothing.
    @Test func aChangeCommitsOnlyOnWhatItWasDecidedOn() async throws {
        let (fixture, pipeline) = try await Self.pipeline()
        defer { withExtendedLifetime(fixture) {} }
        func store(_ operation: DossierOperation) async throws -> DocumentRecord {
            let bytes = SecureRandom.bytes(100)
            return try await pipeline.store(
                operation, on: VaultFixture.patient, by: Self.doctor, content: VaultFixture.content(bytes),
                declaredLength: Int64(bytes.count))
        }
        let document = try await store(.addDocument(Self.upload("v1")))
        let mask = DossierOperation.maskDocument(document.id, masked: true)
        func decided() async throws -> (OperationPlan, OperationPipeline.Facts) {
            let facts = try await pipeline.load(mask, ins: VaultFixture.patient)
            return (pipeline.planner.plan(mask, by: Self.patient, facts: facts.domain), facts)
        }
        var (plan, facts) = try await decided()
        _ = try await store(.addDocument(Self.upload("another")))
        try await pipeline.commit(plan, facts: facts, report: nil)  // another document: still as decided

        (plan, facts) = try await decided()
        _ = try await store(.replaceDocument(document.id, Self.upload("v2")))
        await #expect(throws: StaleDecision.self) { try await pipeline.commit(plan, facts: facts, report: nil) }

        (plan, facts) = try await decided()
        _ = try await pipeline.perform(
            .setPreferences(PreferencesChange(maskNewDocuments: true)), on: VaultFixture.patient, by: Self.patient)
        await #expect(throws: StaleDecision.self) { try await pipeline.commit(plan, facts: facts, report: nil) }
    }
}
