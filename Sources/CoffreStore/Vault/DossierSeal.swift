import CoffreCrypto
import CoffreDomain
import Foundation

/// Makes a dossier's rows one version of the dossier, so that someone who can write the index
/// but holds no master key cannot put back an older copy of one row unnoticed (a revoked
/// authorisation brought back, a block lifted, a mask, a release or a deletion undone):
/// - each document row has a version, bound into its sealed record's associated data;
/// - the dossier's row counts its document rows and keeps the XOR of a keyed hash of each
///   one's id and version (a set MAC: without the key, no set of rows can be made to match);
/// - a MAC under the vault's seal key covers the dossier row's generation, that count and
///   digest, the clear columns the index filters on, and the sealed record;
/// - every change's trace entry records the generation it left, and the trace is chained and
///   anchored outside the index.
///
/// So one row put back alone breaks the MAC (the dossier's row) or the digest (a document's
/// row), and the whole dossier row put back with its MAC is older than its trace says.
struct DossierSeal: Sendable {
    let key: SymmetricKey

    /// What one document row adds to its dossier's digest.
    func element(_ version: DocumentVersion) -> [UInt8] {
        KeyedHash.digest(
            Array(version.id.utf8) + withUnsafeBytes(of: version.version.bigEndian, Array.init), domain: "coffre/dossier-seal/document/v1",
            key: key)
    }

    /// The digest of a set of rows (the empty set's is all zeros).
    func digest(of versions: [DocumentVersion]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: KeyedHash.byteCount)
        for version in versions { Self.xor(element(version), into: &digest) }
        return digest
    }

    /// The MAC of `row` as it stands.
    func mac(_ row: DossierRow) -> Data {
        var message: [UInt8] = []
        func field(_ bytes: [UInt8]) {
            message += withUnsafeBytes(of: UInt32(bytes.count).bigEndian, Array.init)
            message += bytes
        }
        func number(_ value: Int64) { message += withUnsafeBytes(of: value.bigEndian, Array.init) }
        field(Array(row.id.utf8))
        field(Array(row.insHash))
        field(Array(row.state.utf8))
        field(row.purgeAfter.map { withUnsafeBytes(of: $0.bigEndian, Array.init) } ?? [])
        number(row.generation)
        number(row.keyGeneration)
        number(row.documentCount)
        field(Array(row.documentDigest ?? Data()))
        field(Array(row.sealed))
        return Data(KeyedHash.digest(message, domain: "coffre/dossier-seal/v1", key: key))
    }

    /// `row` sealed after a change: one generation on, its digest moved from the rows `removed`
    /// (as they were) to the rows `added` (as they now are).
    func resealed(_ row: DossierRow, removing removed: [DocumentVersion] = [], adding added: [DocumentVersion] = []) -> DossierRow {
        var digest = Array(row.documentDigest ?? Data(repeating: 0, count: KeyedHash.byteCount))
        for version in removed + added { Self.xor(element(version), into: &digest) }
        var sealed = row
        sealed.generation = row.generation + 1
        sealed.documentCount = row.documentCount - Int64(removed.count) + Int64(added.count)
        sealed.documentDigest = Data(digest)
        sealed.seal = mac(sealed)
        return sealed
    }

    /// `row` sealed over exactly `versions`, one generation on (a new dossier, a rekey, a row
    /// written before seals existed).
    func resealed(_ row: DossierRow, over versions: [DocumentVersion]) -> DossierRow {
        var sealed = row
        sealed.generation = row.generation + 1
        sealed.documentCount = Int64(versions.count)
        sealed.documentDigest = Data(digest(of: versions))
        sealed.seal = mac(sealed)
        return sealed
    }

    /// Checks that `row` is as the vault last sealed it, and not older than its trace says.
    /// - Parameter traced: the highest generation the dossier's trace records.
    func check(_ row: DossierRow, traced: Int64?) throws(StoreError) {
        guard let seal = row.seal, seal.count == KeyedHash.byteCount, Self.equal(Array(seal), Array(mac(row))) else {
            throw StoreError(
                .integrity,
                "dossier \(row.id): its row does not match its seal (a column or its sealed record was changed, or put back from an "
                    + "older copy, behind the vault's back); it is not served")
        }
        if let traced, traced > row.generation {
            throw StoreError(
                .integrity,
                "dossier \(row.id): its row is at generation \(row.generation) but its trace records generation \(traced) (the row "
                    + "was put back from an older copy); it is not served")
        }
    }

    /// Checks that `versions` are exactly the document rows `row` was sealed over, and returns
    /// them by id.
    func check(_ versions: [DocumentVersion], of row: DossierRow) throws(StoreError) -> [String: Int64] {
        let byID = Dictionary(versions.map { ($0.id, $0.version) }, uniquingKeysWith: { first, _ in first })
        guard byID.count == versions.count, Int64(versions.count) == row.documentCount,
            let expected = row.documentDigest, Self.equal(digest(of: versions), Array(expected))
        else {
            throw StoreError(
                .integrity,
                "dossier \(row.id): its \(versions.count) document row(s) do not match the \(row.documentCount) its seal counts (a row "
                    + "was put back from an older copy, removed or added behind the vault's back); it is not served")
        }
        return byID
    }

    /// Checks a document row, read in the snapshot that read its dossier's row, against the
    /// versions the seal counts at that generation: it must be the version counted.
    static func check(_ row: DocumentRow, against versions: [String: Int64]) throws(StoreError) {
        let expected = versions[row.id]
        if expected != row.version {
            throw StoreError(
                .integrity,
                "document \(row.id) of dossier \(row.dossierId): its row is version \(row.version) but the dossier's seal counts "
                    + "version \(expected.map(String.init) ?? "none") (the row was put back from an older copy, or added); it is not "
                    + "served")
        }
    }

    private static func xor(_ element: [UInt8], into digest: inout [UInt8]) {
        for index in digest.indices { digest[index] ^= element[index] }
    }

    /// Compared in constant time, like every MAC.
    private static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension DocumentRow {
    /// What the dossier's seal counts of this row.
    var versionStamp: DocumentVersion { DocumentVersion(id: id, version: version) }
}
