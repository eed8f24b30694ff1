import CoffreCrypto
import CoffreDomain
import CoffreTesting
import Foundation
import GRDB
import Testing

@testable import CoffreStore

/// A fresh, empty index of one engine, with what keeps it alive.
struct IndexEngine: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () throws -> (index: VaultIndex, keepAlive: any Sendable)
    var testDescription: String { name }
}

/// What the index must guarantee whatever engine holds it, as the vault relies on it: one
/// dossier per patient, changes that apply one after the other, a document's versions moved
/// together, changes that fail alone beside their trace entry, notices stored once, a purge's
/// key destroyed only if nothing changed since its decision. Every engine runs these same checks
/// (today SQLite; a shared engine adds itself to `engines`).
@Suite struct IndexConformance {
    static let engines: [IndexEngine] = [
        IndexEngine(name: "sqlite") {
            let directory = try TemporaryDirectory(prefix: "coffre-index")
            return (try VaultIndex(path: directory.path + "/index.sqlite"), directory)
        }
    ]

    static func dossier(_ n: Int, state: String = "active", purgeAfter: Int64? = nil) -> DossierRow {
        var row = DossierRow(
            id: String(format: "%032x", n), insHash: Data(SecureRandom.bytes(32)), state: state, createdAt: 1, masterVersion: 1,
            keyGeneration: 1, wrappedKey: Data(SecureRandom.bytes(72)), sealed: Data(SecureRandom.bytes(40)))
        row.purgeAfter = purgeAfter
        return row
    }

    static func document(_ n: Int, in dossier: DossierRow, replaces: String? = nil) -> DocumentRow {
        DocumentRow(
            id: String(format: "%031x", n) + "d", dossierId: dossier.id, documentClass: "BIOLOGIE", status: "current",
            mediaType: "text/plain", size: 1, uploadedAt: Int64(n), replaces: replaces, keyGeneration: dossier.keyGeneration,
            wrappedKey: Data(SecureRandom.bytes(72)), sealed: Data(SecureRandom.bytes(40)))
    }

    @Test(arguments: engines)
    func oneDossierPerPatientWhoeverCreatesItFirst(_ engine: IndexEngine) async throws {
        let (index, keepAlive) = try engine.make()
        var rows: [DossierRow] = []
        for n in 0..<8 {
            var row = Self.dossier(n)
            row.insHash = Data(repeating: 7, count: 32)
            rows.append(row)
        }
        let created = await withTaskGroup(of: Bool.self) { group in
            for row in rows { group.addTask { (try? await index.insertDossier(row)) != nil } }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(created == 1)
        await #expect(throws: StoreError.self) { try await index.insertDossier(rows[0]) }
        #expect(try index.dossier(insHash: Data(repeating: 7, count: 32)) != nil)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func concurrentChangesToADossierApplyOneAfterTheOther(_ engine: IndexEngine) async throws {
        let (index, keepAlive) = try engine.make()
        let row = Self.dossier(1)
        try await index.insertDossier(row)
        let changes = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<changes {
                group.addTask {
                    _ = try await index.updateDossier(insHash: row.insHash) { current in
                        var next = current
                        next.sealed.append(1)
                        return next
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try index.dossier(insHash: row.insHash)?.sealed.count == row.sealed.count + changes, "no change lost")
        let unchanged = try await index.updateDossier(insHash: row.insHash) { $0 }
        #expect(!unchanged.changed)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aDocumentsVersionsMoveTogetherAndOnlyTheCurrentOneIsReplaced(_ engine: IndexEngine) async throws {
        let (index, keepAlive) = try engine.make()
        let dossier = Self.dossier(1)
        try await index.insertDossier(dossier)
        let first = Self.document(1, in: dossier)
        let second = Self.document(2, in: dossier, replaces: first.id)
        let third = Self.document(3, in: dossier, replaces: second.id)
        let supersede: @Sendable (DocumentRow) throws -> DocumentRow = { old in
            var row = old
            row.status = "superseded"
            return row
        }
        try await index.write("store") { db in
            try VaultIndex.insertDocument(first, db)
            try VaultIndex.insertReplacement(second, supersede: supersede, db)
            try VaultIndex.insertReplacement(third, supersede: supersede, db)
        }
        // A second replacement of a version no longer current is refused, and changes nothing.
        let late = Self.document(4, in: dossier, replaces: second.id)
        let refused = await #expect(throws: StoreError.self) {
            try await index.write("store") { db in try VaultIndex.insertReplacement(late, supersede: supersede, db) }
        }
        #expect(refused?.code == .conflict)
        #expect(try await index.documents(dossierID: dossier.id, includeSuperseded: true).map(\.id) == [first, second, third].map(\.id))
        #expect(try await index.documents(dossierID: dossier.id, includeSuperseded: false).map(\.id) == [third.id])
        // A change named on the middle version reaches every version, back and forward.
        let named = try await index.updateDocumentChain(id: second.id, dossierID: dossier.id, keyGeneration: 1) { target, row in
            var next = row
            next.mediaType = "changed/" + target.id.prefix(4)
            return next
        }
        #expect(named.id == second.id)
        let types = try await index.documents(dossierID: dossier.id, includeSuperseded: true).map(\.mediaType)
        #expect(Set(types) == ["changed/" + second.id.prefix(4)])
        // A row written under another key generation (a rekey raced it) is refused.
        let stale = await #expect(throws: StoreError.self) {
            _ = try await index.updateDocumentChain(id: second.id, dossierID: dossier.id, keyGeneration: 2) { $1 }
        }
        #expect(stale?.code == .conflict)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aChangeThatFailsIsRolledBackAloneAndItsEntryKept(_ engine: IndexEngine) async throws {
        let (index, keepAlive) = try engine.make()
        let dossier = Self.dossier(1)
        try await index.insertDossier(dossier)
        func entry(_ seq: Int64) -> TraceEntryRow {
            TraceEntryRow(
                seq: seq, at: seq, dossierId: dossier.id, action: "dossier.manage", outcome: "allowed", detail: nil,
                sealed: Data([UInt8(seq)]), hash: Data(SecureRandom.bytes(32)))
        }
        let good = Self.document(1, in: dossier)
        let bad = Self.document(
            2,
            in: DossierRow(
                id: String(repeating: "f", count: 32), insHash: Data(), state: "active", createdAt: 0, masterVersion: 1, keyGeneration: 1,
                wrappedKey: Data(), sealed: Data()))
        let failures = try await index.appendTrace(
            [entry(1), entry(2), entry(3)], checkpoint: nil,
            changes: [
                { db in try VaultIndex.insertDocument(good, db) },
                { db in try VaultIndex.insertDocument(bad, db) },  // no such dossier
                nil,
            ])
        #expect(failures.keys.sorted() == [1])
        #expect((failures[1] as? StoreError)?.code == .dossierNotFound)
        #expect(try await index.traceEntries(dossierID: dossier.id, after: 0, limit: 10).map(\.seq) == [1, 2, 3])
        #expect(try await index.documents(dossierID: dossier.id, includeSuperseded: true).map(\.id) == [good.id])
        let tail = try await index.traceTail()
        #expect(tail.last?.seq == 3 && tail.checkpoint == nil)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aNoticeIsStoredOnceAndAcknowledgedByItsRecipientOnly(_ engine: IndexEngine) async throws {
        let (index, keepAlive) = try engine.make()
        let dossier = Self.dossier(1)
        try await index.insertDossier(dossier)
        func notice(_ id: String, _ recipient: String) -> NotificationRow {
            NotificationRow(id: id, dossierId: dossier.id, recipient: recipient, createdAt: 1, acknowledgedAt: nil, sealed: Data([1]))
        }
        try await index.insertNotification(notice("a", "patient"))
        try await index.insertNotification(notice("a", "patient"))
        try await index.insertNotification(notice("b", "patient"))
        try await index.insertNotification(notice("c", "medecin_traitant"))
        #expect(
            try await index.notifications(dossierID: dossier.id, recipient: "patient", includeAcknowledged: false).map(\.id) == ["a", "b"])
        #expect(try await index.acknowledgeNotifications(dossierID: dossier.id, recipient: "patient", ids: ["a", "c"], at: 5) == 1)
        #expect(try await index.acknowledgeNotifications(dossierID: dossier.id, recipient: "patient", ids: nil, at: 6) == 1)
        #expect(try await index.notifications(dossierID: dossier.id, recipient: "patient", includeAcknowledged: false).isEmpty)
        #expect(try await index.notifications(dossierID: dossier.id, recipient: "medecin_traitant", includeAcknowledged: false).count == 1)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aPurgeDestroysTheKeyOnlyIfNothingChangedSinceItsDecision(_ engine: IndexEngine) async throws {
        let (index, keepAlive) = try engine.make()
        let due = Self.dossier(1, state: "closed", purgeAfter: 10)
        let later = Self.dossier(2, state: "closed", purgeAfter: 1_000)
        let open = Self.dossier(3)
        for row in [due, later, open] { try await index.insertDossier(row) }
        try await index.write("store") { db in try VaultIndex.insertDocument(Self.document(1, in: due), db) }
        #expect(try await index.retentionCandidates(dueBy: 100, after: "", limit: 10).map(\.id) == [due.id])
        #expect(try await index.countRetentionCandidates(dueBy: 2_000) == 2)
        // A reopening (any change of the sealed record) between the decision and the purge wins.
        #expect(try await index.destroyDossierKey(id: due.id, ifSealedIs: Data([0]), at: 100) == false)
        #expect(try await index.destroyDossierKey(id: due.id, ifSealedIs: due.sealed, at: 100))
        let purging = try #require(try index.dossier(insHash: due.insHash))
        #expect(purging.state == "purging" && purging.wrappedKey.isEmpty && purging.sealed.isEmpty)
        #expect(try await index.retentionCandidates(dueBy: 0, after: "", limit: 10).map(\.id) == [due.id], "an unfinished purge")
        #expect(try await index.blobNames(dossierID: due.id).count == 1)
        try await index.deleteDossier(id: due.id)
        #expect(try index.dossier(insHash: due.insHash) == nil)
        #expect(try await index.documents(dossierID: due.id, includeSuperseded: true).isEmpty)
        let recorded = try await index.read("purges") { db in try VaultIndex.purgeRecord(db) }
        #expect(recorded?.dossiers == 1 && recorded?.lastAt == 100)
        withExtendedLifetime(keepAlive) {}
    }
}
