import CoffreDomain
@testable import CoffreStore
import Testing

/// The comparison of the index's blob names with the blobs on disk after a crash (pure logic;
/// `VaultTests.recoveryRemovesTemporariesAndOrphansAfterAnUncleanStop` runs it on a real vault).
@Suite struct BlobReconciliationTests {
    static func name(_ id: String, _ version: UInt32 = 0) -> BlobName { BlobName(DocumentID(id)!, version: version) }
    /// A shard's listing, as the blob store hands it over.
    static func listing(_ names: BlobName...) -> [PackedBlobName] { names.map(PackedBlobName.init) }

    static let a = "a0" + String(repeating: "1", count: 30)
    static let b = "a0" + String(repeating: "f", count: 30)
    static let c = "b1" + String(repeating: "0", count: 30)
    static let d = "c2" + String(repeating: "9", count: 29) + "a"
    static let orphan = "a0" + String(repeating: "5", count: 30)

    @Test func aPackedNameIsTheBlobNameItCameFrom() throws {
        for blob in [
            Self.name(Self.a), Self.name(Self.d, 7), Self.name("00000000000000000000000000000000"),
            Self.name("ffffffffffffffffffffffffffffffff", .max),
        ] {
            let packed = try #require(PackedBlobName(id: blob.document.value, version: Int64(blob.version)))
            #expect(packed.blobName == blob)
            #expect(packed == PackedBlobName(blob))
            #expect(packed.shard == Int(blob.document.value.prefix(2), radix: 16))
        }
    }

    @Test(arguments: [
        "", ".", "..", "README", BlobReconciliationTests.a, BlobReconciliationTests.a + ".1", BlobReconciliationTests.a + ".4294967295",
        BlobReconciliationTests.a + ".4294967296", BlobReconciliationTests.a + ".0", BlobReconciliationTests.a + ".07",
        BlobReconciliationTests.a + ".+7", BlobReconciliationTests.a + ".", BlobReconciliationTests.a + ".1.2",
        BlobReconciliationTests.a + "x", BlobReconciliationTests.a + ".12345678901", BlobReconciliationTests.a + ".-1",
        "A0" + String(repeating: "1", count: 30), String(BlobReconciliationTests.a.dropLast()), BlobReconciliationTests.a + ".1 ",
    ])
    func aFileNameParsesAsBlobNameParsesIt(fileName: String) {
        let packed = Array(fileName.utf8).withUnsafeBytes { PackedBlobName(fileName: $0) }
        #expect(packed == BlobName(fileName: fileName).map(PackedBlobName.init), "\(fileName)")
    }

    @Test(
        arguments: [
            ("A0" + String(repeating: "1", count: 30), 0), (String(repeating: "1", count: 31), 0),
            (String(repeating: "1", count: 33), 0), (String(repeating: "g", count: 32), 0), ("../" + String(repeating: "1", count: 29), 0),
            (String(repeating: "1", count: 32), -1), (String(repeating: "1", count: 32), Int64(UInt32.max) + 1),
        ] as [(String, Int64)])
    func whatNamesNoBlobIsNotPacked(id: String, version: Int64) {
        #expect(PackedBlobName(id: id, version: version) == nil)
    }

    @Test func orphansAndMissingBlobsAreFoundShardByShard() {
        // Known, in no particular order: a and b (re-encrypted twice) in shard a0, c in b1, d in c2.
        var reconciliation = BlobReconciliation(
            known: [Self.name(Self.d), Self.name(Self.b, 2), Self.name(Self.c), Self.name(Self.a)].map(PackedBlobName.init))
        #expect(reconciliation.orphans(inShard: 0x00, listed: []) == [])
        // Shard a0 holds a, b's current and previous encryptions, and a blob no row names.
        let orphans = reconciliation.orphans(
            inShard: 0xa0, listed: Self.listing(Self.name(Self.orphan), Self.name(Self.b, 2), Self.name(Self.a), Self.name(Self.b, 1)))
        #expect(Set(orphans) == [Self.name(Self.orphan), Self.name(Self.b, 1)])
        #expect(reconciliation.missing == 0)
        // c's blob is gone.
        #expect(reconciliation.orphans(inShard: 0xb1, listed: []) == [])
        #expect(reconciliation.missing == 1)
        #expect(reconciliation.orphans(inShard: 0xc2, listed: Self.listing(Self.name(Self.d))) == [])
        reconciliation.finish()
        #expect(reconciliation.missing == 1)
    }

    @Test func theRowsOfShardsNeverListedAreMissing() {
        var reconciliation = BlobReconciliation(known: [Self.name(Self.a), Self.name(Self.c), Self.name(Self.d)].map(PackedBlobName.init))
        // Shard a0 skipped: a is missing; b1 listed whole.
        #expect(reconciliation.orphans(inShard: 0xb1, listed: Self.listing(Self.name(Self.c))) == [])
        #expect(reconciliation.missing == 1)
        // c2 never listed.
        reconciliation.finish()
        #expect(reconciliation.missing == 2)
    }

    @Test func aNameOfAnotherShardIsNeverJudgedAnOrphan() {
        // A copy of c's blob name misplaced in shard a0 must not make c's real blob, in b1, an
        // orphan to remove.
        var reconciliation = BlobReconciliation(known: [Self.name(Self.a)].map(PackedBlobName.init))
        #expect(reconciliation.orphans(inShard: 0xa0, listed: Self.listing(Self.name(Self.a), Self.name(Self.c))) == [])
        #expect(reconciliation.orphans(inShard: 0xb1, listed: Self.listing(Self.name(Self.c))) == [Self.name(Self.c)])
    }

    @Test func anEmptyIndexMakesEveryBlobAnOrphan() {
        var reconciliation = BlobReconciliation(known: [])
        #expect(reconciliation.orphans(inShard: 0xa0, listed: Self.listing(Self.name(Self.a), Self.name(Self.b))).count == 2)
        reconciliation.finish()
        #expect(reconciliation.missing == 0)
    }
}

extension PackedBlobName {
    init?(id: String, version: Int64) {
        var id = id
        guard let name = id.withUTF8({ Self(id: UnsafeRawBufferPointer($0), version: version) }) else { return nil }
        self = name
    }

    init(_ name: BlobName) {
        self.init(id: name.document.value, version: Int64(name.version))!
    }
}
