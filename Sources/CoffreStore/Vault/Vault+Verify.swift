import CoffreCrypto
import CoffreDomain
import Foundation

/// The result of checking the vault's contents.
public struct ContentVerification: Sendable, Equatable {
    public var dossiersChecked = 0
    public var documentsChecked = 0
    public var orphanBlobs = 0
    /// Every problem, naming its dossier and document ids.
    public var problems: [String] = []
}

extension Vault {
    /// Checks the index (SQLite's own checks), that every dossier key and document key unwraps,
    /// that every document's blob exists, decrypts to the end and matches its recorded length
    /// and SHA-256, and that no blob is left without a row. With `sample`, only that many
    /// documents, picked at random, have their blobs read (keys and orphans are still checked
    /// throughout). Earlier generations of rekeyed dossiers' keys must all be there and unwrap.
    ///
    /// - Parameter progress: called after each document with (documents read, documents to read).
    public func verifyContents(
        sample: Int? = nil, progress: (@Sendable (_ checked: Int, _ total: Int) async -> Void)? = nil
    ) async throws(StoreError) -> ContentVerification {
        var result = ContentVerification()
        result.problems += try await index.integrityProblems()
        // First the rows, then one dossier at a time: only one dossier key is held in the arena
        // at once, however large the vault.
        var dossiers: [(DossierRow, [DocumentRow])] = []
        var known = try await index.allBlobNames()
        for dossier in try await index.allDossiers() {
            let documents = try await index.allDocuments(dossierID: dossier.id)
            dossiers.append((dossier, documents))
        }
        var selected: Set<String>? = nil
        if let sample {
            selected = Set(dossiers.flatMap { $0.1.map(\.id) }.shuffled().prefix(sample))
        }
        let total = selected?.count ?? dossiers.reduce(0) { $0 + $1.1.count }
        for (dossier, documents) in dossiers {
            result.dossiersChecked += 1
            let key: SymmetricKey
            do {
                (key, _) = try openDossierRow(dossier, ins: nil)
            } catch {
                result.problems.append("dossier \(dossier.id): its key or sealed record does not open (\(error.message))")
                continue
            }
            if dossier.keyGeneration > 1 {
                let opened = try await archivedDossierKeys(DossierID(unchecked: dossier.id)).count
                if opened != Int(dossier.keyGeneration) - 1 {
                    result.problems.append(
                        "dossier \(dossier.id): \(Int(dossier.keyGeneration) - 1 - opened) earlier key generation(s) missing or do not unwrap "
                            + "(trace entries before its rekey cannot be read)")
                }
            }
            for row in documents where selected?.contains(row.id) ?? true {
                result.documentsChecked += 1
                if let problem = await verifyDocument(row, dossierKey: key) {
                    result.problems.append("dossier \(row.dossierId) document \(row.id): \(problem)")
                }
                await progress?(result.documentsChecked, total)
            }
        }
        known.formUnion(dossiers.flatMap { $0.1.compactMap { VaultIndex.blobName(of: $0) } })
        // Blobs younger than a minute may be stores in flight (renamed, row not yet committed).
        let cutoff = Int64(Date().timeIntervalSince1970) - 60
        for name in try await blobs.blobNames(modifiedBefore: cutoff) where !known.contains(name) {
            result.orphanBlobs += 1
            result.problems.append("blob \(name): no index row names it (an orphan)")
        }
        return result
    }

    /// Nil when the document's keys unwrap and its blob reads back whole and matching.
    private func verifyDocument(_ row: DocumentRow, dossierKey: SymmetricKey) async -> String? {
        let id = DocumentID(unchecked: row.id)
        let record: DocumentRecord
        let documentKey: SymmetricKey
        do {
            record = try self.record(from: row, dossierKey: dossierKey)
            documentKey = try Self.crypto { () throws(CryptoError) in
                try KeyWrap.unwrap(
                    Array(row.wrappedKey), with: dossierKey,
                    context: Self.documentKeyContext(
                        DossierID(unchecked: row.dossierId), id, UInt32(truncatingIfNeeded: row.keyGeneration)),
                    in: arena)
            }
        } catch {
            return "its sealed record or wrapped key does not open (\(error.message))"
        }
        let reader: any BlobReader
        do {
            reader = try await blobs.openReader(for: BlobName(id, version: UInt32(truncatingIfNeeded: row.blobVersion)))
        } catch {
            return error.code == .integrity ? "its blob is missing" : "its blob cannot be opened (\(error.message))"
        }
        do {
            let content = try await DocumentContent.open(record: record, reader: reader, key: documentKey, arena: arena)
            while try await content.next() != nil {}
            await content.close()
            return nil
        } catch {
            await reader.close()
            return "its blob fails verification (\(error.message))"
        }
    }
}
