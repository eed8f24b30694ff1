import CoffreCrypto
import CoffreDomain
import CoffreTesting
import Foundation
import Logging
import Testing

@testable import CoffreStore

/// A fresh, empty index of one engine, with what keeps it alive, and a way to open a second
/// connection to the same index (another daemon's).
struct IndexEngine: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () throws -> (index: any VaultIndex, keepAlive: any Sendable, openAgain: @Sendable () throws -> any VaultIndex)
    var testDescription: String { name }
}

/// What the index must guarantee whatever engine holds it, as the vault relies on it: one
/// dossier per patient, changes that apply one after the other, a revision that counts every
/// change to a dossier's row, a document's versions moved together, savepoints that fail
/// alone, notices stored once, a purge's key destroyed only if nothing changed since its
/// decision, and one trace chain however many writers append to it. Every engine runs these
/// same checks, written against `VaultIndex`, `IndexReader` and `IndexTransaction` alone
/// (today SQLite; a shared engine adds itself to `engines`).
@Suite struct IndexConformance {
    static let engines: [IndexEngine] = [
        IndexEngine(name: "sqlite") {
            let directory = try TemporaryDirectory(prefix: "coffre-index")
            let path = directory.path + "/index.sqlite"
            return (try SQLiteIndex(path: path), directory, { try SQLiteIndex(path: path) })
        }
    ]

    /// Trace writers on two connections to one index, as two daemons sharing it would have.
    /// Each with the vault's trace keys and an anchor file of its own.
    static func twoWriters(_ index: any VaultIndex, _ other: any VaultIndex) async throws -> (
        writers: [TraceWriter], keys: TraceKeys, anchors: TemporaryDirectory
    ) {
        let arena = try SecureArena(slotCount: 8)
        let keys = try TraceKeys(seed: try SymmetricKey.random(in: arena), arena: arena)
        let anchors = try TemporaryDirectory(prefix: "coffre-anchors")
        var writers: [TraceWriter] = []
        for (n, index) in [index, other].enumerated() {
            let file = try await TraceAnchors.open(
                path: anchors.path + "/\(n)", keys: keys, index: index, newTrace: true, logger: Logger(label: "test"))
            writers.append(try await TraceWriter(index: index, keys: keys, anchors: file, clock: SystemClock(), soleWriter: false))
        }
        return (writers, keys, anchors)
    }

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
        let (index, keepAlive, _) = try engine.make()
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
        #expect(try await index.dossier(insHash: Data(repeating: 7, count: 32)) != nil)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func concurrentChangesToADossierApplyOneAfterTheOther(_ engine: IndexEngine) async throws {
        let (index, keepAlive, _) = try engine.make()
        let row = Self.dossier(1)
        try await index.insertDossier(row)
        let changes = 40
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<changes {
                group.addTask {
                    try await index.write("change") { transaction in
                        var next = try #require(try transaction.dossier(id: row.id))
                        next.sealed.append(1)
                        try transaction.update(dossier: next)
                    }
                }
            }
            try await group.waitForAll()
        }
        let changed = try #require(try await index.dossier(insHash: row.insHash))
        #expect(changed.sealed.count == row.sealed.count + changes, "no change lost")
        #expect(changed.revision == Int64(changes))
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aDocumentsVersionsMoveTogetherAndOnlyTheCurrentOneIsReplaced(_ engine: IndexEngine) async throws {
        let (index, keepAlive, _) = try engine.make()
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
        try await index.write("store") { transaction in
            try transaction.insertNewDocument(first)
            try transaction.insertReplacement(second, supersede: supersede)
            try transaction.insertReplacement(third, supersede: supersede)
        }
        // A second replacement of a version no longer current is refused, and changes nothing.
        let late = Self.document(4, in: dossier, replaces: second.id)
        let refused = await #expect(throws: StoreError.self) {
            try await index.write("store") { transaction in try transaction.insertReplacement(late, supersede: supersede) }
        }
        #expect(refused?.code == .conflict)
        #expect(try await index.documents(dossierID: dossier.id, includeSuperseded: true).map(\.id) == [first, second, third].map(\.id))
        #expect(try await index.documents(dossierID: dossier.id, includeSuperseded: false).map(\.id) == [third.id])
        // A change named on the middle version reaches every version, back and forward.
        let named = try await index.write("change") { transaction in
            try transaction.updateDocumentChain(id: second.id, dossierID: dossier.id, keyGeneration: 1) { target, row in
                var next = row
                next.mediaType = "changed/" + target.id.prefix(4)
                return next
            }
        }
        #expect(named.id == second.id)
        let types = try await index.documents(dossierID: dossier.id, includeSuperseded: true).map(\.mediaType)
        #expect(Set(types) == ["changed/" + second.id.prefix(4)])
        // A row written under another key generation (a rekey raced it) is refused.
        let stale = await #expect(throws: StoreError.self) {
            _ = try await index.write("change") { transaction in
                try transaction.updateDocumentChain(id: second.id, dossierID: dossier.id, keyGeneration: 2) { $1 }
            }
        }
        #expect(stale?.code == .conflict)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aSavepointThatFailsIsRolledBackAloneAndTheRestCommits(_ engine: IndexEngine) async throws {
        let (index, keepAlive, _) = try engine.make()
        let dossier = Self.dossier(1)
        try await index.insertDossier(dossier)
        let entries = (1...3).map { seq in
            TraceEntryRow(
                seq: Int64(seq), at: Int64(seq), dossierId: dossier.id, action: "dossier.manage", outcome: "allowed", detail: nil,
                sealed: Data([UInt8(seq)]), hash: Data(SecureRandom.bytes(32)))
        }
        let good = Self.document(1, in: dossier)
        let orphan = Self.document(2, in: Self.dossier(99))
        let failure = try await index.write("append") { transaction -> String? in
            try transaction.inSavepoint { try transaction.insertNewDocument(good) }
            var failure: String? = nil
            do {
                try transaction.inSavepoint {
                    try transaction.insert(
                        notification: NotificationRow(
                            id: "n", dossierId: dossier.id, recipient: "patient", createdAt: 1, acknowledgedAt: nil, sealed: Data([1])))
                    try transaction.insertNewDocument(orphan)  // no such dossier
                }
            } catch {
                failure = (error as? StoreError).map { "\($0.code)" }
            }
            try transaction.append(traceEntries: entries, checkpoints: [])
            return failure
        }
        #expect(failure == "dossierNotFound")
        #expect(try await index.traceEntries(dossierID: dossier.id, after: 0, limit: 10).map(\.seq) == [1, 2, 3])
        #expect(try await index.documents(dossierID: dossier.id, includeSuperseded: true).map(\.id) == [good.id])
        #expect(try await index.notifications(dossierID: dossier.id, recipient: "patient", includeAcknowledged: true).isEmpty)
        let tail = try await index.read("tail") { try $0.traceTail() }
        #expect(tail.last?.seq == 3 && tail.checkpoint == nil)
        withExtendedLifetime(keepAlive) {}
    }

    /// Every change to a dossier's row moves its revision on, whoever writes the row back; its
    /// documents' rows, and a key rotation's rewrap, do not.
    @Test(arguments: engines)
    func theRevisionCountsEveryChangeToTheDossiersRow(_ engine: IndexEngine) async throws {
        let (index, keepAlive, _) = try engine.make()
        let dossier = Self.dossier(1)
        try await index.insertDossier(dossier)
        func revision() async throws -> Int64 { try #require(try await index.dossier(insHash: dossier.insHash)).revision }
        #expect(try await revision() == 0)
        let document = Self.document(1, in: dossier)
        try await index.write("store") { try $0.insertNewDocument(document) }
        var deleted = document
        deleted.status = "deleted"
        try await index.write("delete") { [deleted] in try $0.update(document: deleted) }
        #expect(try await revision() == 0, "documents have rows of their own")
        var stale = dossier
        stale.revision = 0
        stale.sealed = Data([9])
        try await index.write("change") { [stale] in try $0.update(dossier: stale) }
        #expect(try await revision() == 1, "a row written back with an old revision still counts up")
        try await index.write("change") { transaction in
            var next = try #require(try transaction.dossier(id: dossier.id))
            next.keyGeneration += 1
            try transaction.update(dossier: next)
        }
        #expect(try await revision() == 2, "a new key generation")
        try await index.write("rewrap") { transaction in
            let key = try #require(try transaction.dossierKeys(after: 0, limit: 1).first)
            try transaction.updateDossierKey(at: key.position, masterVersion: 2, wrappedKey: Data([7]))
        }
        #expect(try await revision() == 2, "a rewrap changes nothing decided on")
        withExtendedLifetime(keepAlive) {}
    }

    /// What a dossier's seal relies on: its seal columns written alone (the revision stays), its
    /// generation read back, every row's version read without the rows, and the highest
    /// generation the dossier's trace records, whatever reads came after it.
    @Test(arguments: engines)
    func aDossiersSealItsRowsVersionsAndItsTracedGeneration(_ engine: IndexEngine) async throws {
        let (index, keepAlive, _) = try engine.make()
        let dossier = Self.dossier(1)
        try await index.insertDossier(dossier)
        var first = Self.document(1, in: dossier)
        first.version = 3
        let second = Self.document(2, in: dossier)
        try await index.write("store") { [first] transaction in
            try transaction.insertNewDocument(first)
            try transaction.insertNewDocument(second)
            let other = Self.dossier(2)
            try transaction.insert(dossier: other)
            try transaction.insertNewDocument(Self.document(3, in: other))
        }
        let versions = try await index.read("versions") { try $0.documentVersions(dossierID: dossier.id) }
        #expect(Set(versions.map { "\($0.id) \($0.version)" }) == ["\(first.id) 3", "\(second.id) 1"])

        var sealed = dossier
        sealed.generation = 7
        sealed.documentCount = 2
        sealed.documentDigest = Data(repeating: 5, count: 32)
        sealed.seal = Data(repeating: 6, count: 32)
        sealed.sealed = Data([1])  // not written by a seal update
        try await index.write("seal") { [sealed] in try $0.update(dossierSeal: sealed) }
        let read = try #require(try await index.dossier(insHash: dossier.insHash))
        #expect(read.generation == 7 && read.documentCount == 2 && read.seal == sealed.seal && read.documentDigest == sealed.documentDigest)
        #expect(read.sealed == dossier.sealed && read.revision == 0, "only the seal's columns, and no new revision")
        #expect(try await index.read("generation") { try $0.dossierGeneration(id: dossier.id) } == 7)
        #expect(try await index.read("unsealed") { try $0.unsealedDossierIDs(limit: 10) } == [Self.dossier(2).id], "the other one")

        @Sendable func entry(_ seq: Int64, generation: Int64?, dossierID: String? = dossier.id) -> TraceEntryRow {
            TraceEntryRow(
                seq: seq, at: 1, dossierId: dossierID, action: "a", outcome: "allowed", detail: nil, sealed: nil, hash: Data([1]),
                generation: generation)
        }
        #expect(try await index.read("traced") { try $0.tracedGeneration(dossierID: dossier.id) } == nil)
        try await index.write("trace") { transaction in
            try transaction.append(
                traceEntries: [
                    entry(1, generation: 1), entry(2, generation: 4), entry(3, generation: nil),
                    entry(4, generation: 9, dossierID: "other"),
                ], checkpoints: [])
        }
        #expect(try await index.read("traced") { try $0.tracedGeneration(dossierID: dossier.id) } == 4, "reads record none")
        withExtendedLifetime(keepAlive) {}
    }

    /// Two daemons sharing the index append to one chain: each batch reads the tail in its own
    /// transaction, so no sequence number is used twice and every hash follows from the last.
    @Test(arguments: engines)
    func twoWritersAppendToOneChain(_ engine: IndexEngine) async throws {
        let (index, keepAlive, openAgain) = try engine.make()
        let (writers, keys, anchors) = try await Self.twoWriters(index, try openAgain())
        defer { withExtendedLifetime(anchors) {} }
        let perWriter = 150
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, writer) in writers.enumerated() {
                for i in 0..<perWriter {
                    group.addTask {
                        let entry = TraceWriter.Entry(
                            dossierID: nil, action: "test", outcome: "allowed", detail: "\(n)-\(i)", seal: { _ in nil })
                        _ = try await writer.append(entry, durability: i % 3 == 0 ? .beforeReturning : .batched)
                    }
                }
            }
            try await group.waitForAll()
        }
        let rows = try await index.traceEntries(from: 1, limit: 10_000)
        #expect(rows.map(\.seq) == Array(1...Int64(2 * perWriter)))
        #expect(Set(rows.compactMap(\.detail)).count == 2 * perWriter)
        var hash = TraceWriter.genesis
        for row in rows {
            #expect(row.hash == keys.link(row, to: hash), "entry \(row.seq) follows the one before")
            hash = row.hash
        }
        let checkpoints = try await index.traceCheckpoints(after: nil, through: Int64.max, limit: 100)
        // One at every 64th entry, whichever writer's batch reached it.
        #expect(checkpoints.map(\.seq) == [64, 128, 192, 256])
        for checkpoint in checkpoints { #expect(checkpoint.hash == rows[Int(checkpoint.seq) - 1].hash, "checkpoint \(checkpoint.seq)") }
        withExtendedLifetime(keepAlive) {}
    }

    /// An assertion is admitted once, whichever daemon sees it, until it can be forgotten.
    @Test(arguments: engines)
    func anAssertionIsAdmittedOnceWhicheverWriterSeesIt(_ engine: IndexEngine) async throws {
        let (index, keepAlive, openAgain) = try engine.make()
        let (writers, _, anchors) = try await Self.twoWriters(index, try openAgain())
        defer { withExtendedLifetime(anchors) {} }
        let now = Int64(Date().timeIntervalSince1970)
        let use = AssertionUse(fingerprint: SecureRandom.bytes(16), forgettableAt: now + 300)
        let admitted = await withTaskGroup(of: Bool.self) { group in
            for n in 0..<10 {
                group.addTask {
                    let entry = TraceWriter.Entry(dossierID: nil, action: "test", outcome: "allowed", detail: "\(n)", seal: { _ in nil })
                    return (try? await writers[n % 2].append(entry, assertion: use, durability: .batched)) != nil
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(admitted == 1)
        #expect(try await index.traceEntries(from: 1, limit: 100).count == 1, "a replay writes no entry")
        // Once it can no longer verify, it is forgotten (and could not be presented anyway).
        let expired = AssertionUse(fingerprint: SecureRandom.bytes(16), forgettableAt: now - 1)
        let entry = TraceWriter.Entry(dossierID: nil, action: "test", outcome: "allowed", detail: "x", seal: { _ in nil })
        _ = try await writers[0].append(entry, assertion: expired)
        _ = try await writers[0].append(entry, assertion: AssertionUse(fingerprint: SecureRandom.bytes(16), forgettableAt: now + 300))
        let kept = try await index.write("count") { transaction in
            (
                try transaction.admit(assertion: Data(expired.fingerprint), forgettableAt: now + 1),
                try transaction.admit(assertion: Data(use.fingerprint), forgettableAt: now + 300)
            )
        }
        #expect(kept.0 && !kept.1, "the expired one was forgotten, the live one kept")
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aNoticeIsStoredOnceAndAcknowledgedByItsRecipientOnly(_ engine: IndexEngine) async throws {
        let (index, keepAlive, _) = try engine.make()
        let dossier = Self.dossier(1)
        try await index.insertDossier(dossier)
        func notice(_ id: String, _ recipient: String) -> NotificationRow {
            NotificationRow(id: id, dossierId: dossier.id, recipient: recipient, createdAt: 1, acknowledgedAt: nil, sealed: Data([1]))
        }
        for (id, recipient) in [("a", "patient"), ("a", "patient"), ("b", "patient"), ("c", "medecin_traitant")] {
            let row = notice(id, recipient)
            try await index.write("notify") { try $0.insert(notification: row) }
        }
        #expect(
            try await index.notifications(dossierID: dossier.id, recipient: "patient", includeAcknowledged: false).map(\.id) == ["a", "b"])
        let acknowledged = try await index.write("acknowledge") { transaction in
            [
                try transaction.acknowledgeNotifications(dossierID: dossier.id, recipient: "patient", ids: ["a", "c"], at: 5),
                try transaction.acknowledgeNotifications(dossierID: dossier.id, recipient: "patient", ids: nil, at: 6),
            ]
        }
        #expect(acknowledged == [1, 1])
        #expect(try await index.notifications(dossierID: dossier.id, recipient: "patient", includeAcknowledged: false).isEmpty)
        #expect(try await index.notifications(dossierID: dossier.id, recipient: "medecin_traitant", includeAcknowledged: false).count == 1)
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aPurgeDestroysTheKeyOnlyIfNothingChangedSinceItsDecision(_ engine: IndexEngine) async throws {
        let (index, keepAlive, _) = try engine.make()
        let due = Self.dossier(1, state: "closed", purgeAfter: 10)
        let later = Self.dossier(2, state: "closed", purgeAfter: 1_000)
        let open = Self.dossier(3)
        for row in [due, later, open] { try await index.insertDossier(row) }
        try await index.write("store") { try $0.insertNewDocument(Self.document(1, in: due)) }
        #expect(try await index.retentionCandidates(dueBy: 100, after: "", limit: 10).map(\.id) == [due.id])
        #expect(try await index.countRetentionCandidates(dueBy: 2_000) == 2)
        // A reopening (any change of the sealed record) between the decision and the purge wins.
        #expect(try await index.destroyDossierKey(id: due.id, ifSealedIs: Data([0]), at: 100) == false)
        #expect(try await index.destroyDossierKey(id: due.id, ifSealedIs: due.sealed, at: 100))
        let purging = try #require(try await index.dossier(insHash: due.insHash))
        #expect(purging.state == "purging" && purging.wrappedKey.isEmpty && purging.sealed.isEmpty)
        #expect(try await index.retentionCandidates(dueBy: 0, after: "", limit: 10).map(\.id) == [due.id], "an unfinished purge")
        #expect(try await index.blobNames(dossierID: due.id).count == 1)
        try await index.deleteDossier(id: due.id)
        #expect(try await index.dossier(insHash: due.insHash) == nil)
        #expect(try await index.documents(dossierID: due.id, includeSuperseded: true).isEmpty)
        let recorded = try await index.read("purges") { try $0.purgeRecord().map { [$0.lastAt, Int64($0.dossiers)] } }
        #expect(recorded == [100, 1])
        withExtendedLifetime(keepAlive) {}
    }
}
