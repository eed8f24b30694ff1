import CoffreCrypto
import CoffreDomain
import Foundation
import Testing

@testable import CoffreStore

/// The seal that makes a dossier's rows one version of it: what it covers, what it counts, and
/// the cache of rows checked against it.
@Suite struct DossierSealTests {
    let arena: SecureArena
    let seal: DossierSeal

    init() throws {
        arena = try SecureArena(slotCount: 8)
        seal = DossierSeal(key: try SymmetricKey.random(in: arena))
    }

    static func row() -> DossierRow {
        DossierRow(
            id: String(repeating: "a", count: 32), insHash: Data(repeating: 1, count: 32), state: "active", createdAt: 1,
            masterVersion: 1, keyGeneration: 1, wrappedKey: Data([2]), sealed: Data([3, 4]))
    }

    static let versions = [DocumentVersion(id: "d1", version: 1), DocumentVersion(id: "d2", version: 3)]

    @Test func everyCoveredColumnBreaksTheSealAndNothingElseDoes() throws {
        let sealed = seal.resealed(Self.row(), over: Self.versions)
        try seal.check(sealed, traced: nil)
        try seal.check(sealed, traced: sealed.generation)
        let changes: [(String, (inout DossierRow) -> Void)] = [
            ("id", { $0.id = String(repeating: "b", count: 32) }), ("ins hash", { $0.insHash = Data(repeating: 9, count: 32) }),
            ("state", { $0.state = "closed" }), ("purge date", { $0.purgeAfter = 5 }), ("generation", { $0.generation -= 1 }),
            ("key generation", { $0.keyGeneration = 2 }), ("count", { $0.documentCount = 1 }),
            ("digest", { $0.documentDigest = Data(repeating: 0, count: 32) }), ("sealed record", { $0.sealed = Data([3]) }),
            ("seal", { $0.seal = nil }),
        ]
        for (name, change) in changes {
            var tampered = sealed
            change(&tampered)
            #expect(throws: StoreError.self, "\(name)") { try seal.check(tampered, traced: nil) }
        }
        // A rotation rewraps the key, and the engine counts revisions: neither is the seal's.
        var rewrapped = sealed
        rewrapped.wrappedKey = Data([7])
        rewrapped.masterVersion = 2
        rewrapped.revision = 9
        try seal.check(rewrapped, traced: nil)
        // Older than its trace says: put back.
        #expect(throws: StoreError.self) { try seal.check(sealed, traced: sealed.generation + 1) }
        // Under another key, nothing matches.
        let other = DossierSeal(key: try SymmetricKey.random(in: arena))
        #expect(throws: StoreError.self) { try other.check(sealed, traced: nil) }
    }

    @Test func theDigestCountsExactlyTheRowsSealedOver() throws {
        let row = seal.resealed(Self.row(), over: Self.versions)
        #expect(try seal.check(Array(Self.versions.reversed()), of: row) == ["d1": 1, "d2": 3], "in any order")
        let wrongSets: [(String, [DocumentVersion])] = [
            ("an older version", [DocumentVersion(id: "d1", version: 1), DocumentVersion(id: "d2", version: 2)]),
            ("a row removed", [DocumentVersion(id: "d1", version: 1)]),
            ("a row added", Self.versions + [DocumentVersion(id: "d3", version: 1)]),
            ("a row twice", Self.versions + [DocumentVersion(id: "d2", version: 3)]),
            ("a damaged row", [DocumentVersion(id: "d1", version: 1), .damaged]),
            ("two damaged rows for one", Self.versions + [.damaged, .damaged]),
        ]
        for (name, versions) in wrongSets {
            #expect(throws: StoreError.self, "\(name)") { _ = try seal.check(versions, of: row) }
        }
    }

    @Test func aChangeMovesTheDigestAsSealingAgainWould() throws {
        let before = seal.resealed(Self.row(), over: Self.versions)
        // d2 masked (3 → 4), d3 stored.
        let after = seal.resealed(
            before, removing: [DocumentVersion(id: "d2", version: 3)],
            adding: [DocumentVersion(id: "d2", version: 4), DocumentVersion(id: "d3", version: 1)])
        let now = [DocumentVersion(id: "d1", version: 1), DocumentVersion(id: "d2", version: 4), DocumentVersion(id: "d3", version: 1)]
        #expect(after.generation == before.generation + 1)
        #expect(after.documentDigest == seal.resealed(before, over: now).documentDigest)
        #expect(try seal.check(now, of: after).count == 3)
        try seal.check(after, traced: after.generation)
        #expect(throws: StoreError.self) { _ = try seal.check(Self.versions, of: after) }
    }

    @Test func aDocumentRowIsCheckedAgainstTheVersionsTheSealCounts() throws {
        var document = DocumentRow(
            id: "d2", dossierId: "x", documentClass: "BIOLOGIE", status: "current", mediaType: "text/plain", size: 1, uploadedAt: 1,
            replaces: nil, keyGeneration: 1, wrappedKey: Data(), sealed: Data())
        document.version = 3
        let versions: [String: Int64] = ["d2": 3]
        try DossierSeal.check(document, against: versions)
        // An older copy put back, a version the seal never counted, a row it does not count.
        for version in [2, 4] {
            document.version = Int64(version)
            #expect(throws: StoreError.self, "version \(version)") { try DossierSeal.check(document, against: versions) }
        }
        document.version = 3
        document.id = "d9"
        #expect(throws: StoreError.self) { try DossierSeal.check(document, against: versions) }
    }

    @Test func theCacheHoldsOneGenerationAndForgetsTheLeastRecentlyUsed() {
        let cache = VerifiedDossiers(capacity: 8)
        cache.remember(["a": 1, "b": 2], of: "one", at: 5)
        #expect(cache.versions(of: "one", at: 5) == ["a": 1, "b": 2])
        #expect(cache.versions(of: "one", at: 6) == nil, "a change makes it check again")
        cache.remember(["a": 1, "b": 2, "c": 1], of: "two", at: 1)
        cache.remember(["a": 1], of: "three", at: 1)
        _ = cache.versions(of: "one", at: 5)  // used last: kept
        cache.remember(["a": 1, "b": 1, "c": 1], of: "four", at: 1)  // 9 > 8: down to 6 at most
        #expect(cache.versions(of: "two", at: 1) == nil)
        #expect(cache.versions(of: "four", at: 1) != nil)
        cache.remember(Dictionary(uniqueKeysWithValues: (0..<9).map { ("\($0)", Int64(1)) }), of: "huge", at: 1)
        #expect(cache.versions(of: "huge", at: 1) == nil, "larger than the whole cache: not kept")
        cache.forget("four")
        #expect(cache.versions(of: "four", at: 1) == nil)
    }

    /// A vault written before seals: its next start seals every dossier over its rows, sealed
    /// again as version 1, and every document reads back.
    @Test func dossiersWrittenBeforeSealsAreSealedAtTheNextStart() async throws {
        let fixture = try await VaultFixture()
        let dossier = try await fixture.vault.createDossier(for: VaultFixture.patient)
        let first = try await fixture.store([1, 2, 3])
        let second = try await fixture.store([4, 5])
        _ = try await fixture.vault.change(first.id, in: VaultFixture.patient, .mask(true))
        let key = try #require(dossier.key)
        // As an older version left them: no seal, no generation, rows sealed without a version.
        try await fixture.vault.index.write("unseal") { transaction in
            var row = try #require(try transaction.dossier(id: dossier.id.value))
            row.generation = 0
            row.documentCount = 0
            row.documentDigest = nil
            row.seal = nil
            try transaction.update(dossierSeal: row)
            for var document in try transaction.documents(dossierID: dossier.id.value, includeSuperseded: true) {
                let fields: SealedDocumentFields = try Vault.open(Array(document.sealed), key: key, associatedData: document.associatedData)
                document.version = 0
                document.sealed = Data(try Vault.seal(fields, key: key, associatedData: document.associatedData))
                try transaction.update(document: document)
            }
        }
        await #expect(throws: StoreError.self) { _ = try await fixture.vault.documents(in: VaultFixture.patient) }
        try await fixture.reopen()
        let documents = try await fixture.vault.documents(in: VaultFixture.patient)
        #expect(Set(documents.map(\.id)) == [first.id, second.id])
        #expect(documents.first { $0.id == first.id }?.masked == true)
        #expect(try await fixture.read(second.id) == [4, 5])
        let versions = try await fixture.vault.index.read("versions") { try $0.documentVersions(dossierID: dossier.id.value) }
        #expect(versions.allSatisfy { $0.version == 1 })
        let verification = try await fixture.vault.verifyContents()
        #expect(verification.problems.isEmpty, "\(verification.problems)")
    }
}
