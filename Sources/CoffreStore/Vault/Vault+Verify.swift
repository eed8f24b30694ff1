import CoffreCrypto
import CoffreDomain
import Foundation

/// The result of checking the vault's contents.
public struct ContentVerification: Sendable, Equatable {
    public var dossiersChecked = 0
    public var documentsChecked = 0
    public var orphanBlobs = 0
    var found = ProblemList()
    /// Every problem, naming its dossier and document ids (the first 10,000, then a count).
    public var problems: [String] { found.lines }
}

extension Vault {
    /// Checks the index (SQLite's own checks), that every dossier key and document key unwraps,
    /// that every document's blob exists, decrypts to the end and matches its recorded length
    /// and SHA-256, and that no blob is left without a row. With `sample`, only that many
    /// documents, picked at random, have their blobs read (keys and orphans are still checked
    /// throughout). Earlier generations of rekeyed dossiers' keys must all be there and unwrap.
    ///
    /// Memory stays bounded whatever the vault's size: dossiers, and each dossier's documents,
    /// are read a page at a time (one dossier key in the arena at once), and the orphan check
    /// compares packed names shard by shard (24 bytes a document).
    ///
    /// - Parameter progress: called after each document with (documents read, documents to read).
    func verifyContents(
        sample: Int? = nil, progress: (@Sendable (_ checked: Int, _ total: Int) async -> Void)? = nil
    ) async throws(StoreError) -> ContentVerification {
        var result = ContentVerification()
        result.found.append(contentsOf: try await index.integrityProblems())
        var selected: Set<String>? = nil
        if let sample { selected = Set(try await index.randomDocumentIDs(limit: sample)) }
        let total: Int
        if let selected { total = selected.count } else { total = try await index.documentCountOutsidePurges() }
        var cursor = ""
        while true {
            let page = try await index.dossiers(after: cursor, limit: Self.verifyPageSize)
            guard let last = page.last else { break }
            // A damaged id (a BLOB sorts after every text) would bring the same page back.
            guard last.id > cursor else {
                result.found.append("index: dossier ids out of order after \(cursor) (damage); the dossiers after it were not checked")
                break
            }
            cursor = last.id
            for dossier in page {
                try await verifyDossier(id: dossier.id, selected: selected, total: total, into: &result, progress: progress)
            }
        }
        // A live vault: documents stored or deleted meanwhile make the count differ from the
        // total announced; then a last progress report says where it ended (checked of checked).
        if result.documentsChecked != total, result.documentsChecked > 0 {
            await progress?(result.documentsChecked, result.documentsChecked)
        }
        try await findOrphans(into: &result)
        return result
    }

    /// Dossiers, or documents of one dossier, read at once by `verifyContents`.
    static let verifyPageSize = 500

    /// Checks one dossier's keys and its documents. Verify runs in the live daemon and may take
    /// hours: the dossier's row is read when its turn comes, and again with each page of its
    /// documents (in the same snapshot), so that a rekey, a key rotation or a purge meanwhile
    /// is followed, not reported as damage.
    private func verifyDossier(
        id: String, selected: Set<String>?, total: Int, into result: inout ContentVerification,
        progress: (@Sendable (_ checked: Int, _ total: Int) async -> Void)?
    ) async throws(StoreError) {
        // Ids first, then the rows a page at a time: a dossier of many documents never has all
        // its rows in memory.
        var ids = try await index.documentIDs(dossierID: id)
        if let selected { ids = ids.filter(selected.contains) }
        var held: (row: DossierRow, key: SymmetricKey)? = nil
        var start = 0
        repeat {
            let pageIDs = Array(ids[start..<min(start + Self.verifyPageSize, ids.count)])
            start += Self.verifyPageSize
            let (dossier, page) = try await index.dossierAndDocuments(dossierID: id, documentIDs: pageIDs)
            // Gone or being purged since it was listed: nothing of it is to be checked.
            guard let dossier, dossier.state != "purging" else { return }
            if held == nil {
                result.dossiersChecked += 1
                try await checkEarlierGenerations(of: dossier, into: &result)
                if let problem = try await sealProblem(dossierID: id) { result.found.append(problem) }
            }
            if held?.row.wrappedKey != dossier.wrappedKey || held?.row.keyGeneration != dossier.keyGeneration {
                do {
                    held = (dossier, try openDossierRow(dossier, ins: nil).0)
                } catch {
                    result.found.append("dossier \(dossier.id): its key or sealed record does not open (\(error.message))")
                    return
                }
            }
            guard let key = held?.key else { return }
            for row in page.sorted(by: { $0.id < $1.id }) {
                result.documentsChecked += 1
                if let problem = await verifyDocument(row, dossierKey: key) {
                    result.found.append("dossier \(row.dossierId) document \(row.id): \(problem)")
                }
                await progress?(result.documentsChecked, total)
            }
        } while start < ids.count
    }

    /// Nil when the dossier's row matches its seal and is not older than its trace, and its
    /// document rows are the ones the seal counts (`DossierSeal`); read in a snapshot of its
    /// own, so that changes meanwhile are not taken for damage.
    private func sealProblem(dossierID id: String) async throws(StoreError) -> String? {
        let snapshot = try await index.read("check a dossier's seal") { reader -> (DossierRow, Int64?, [DocumentVersion])? in
            guard let row = try reader.dossier(id: id), row.state != "purging" else { return nil }
            return (row, try reader.tracedGeneration(dossierID: id), try reader.documentVersions(dossierID: id))
        }
        guard let (row, traced, versions) = snapshot else { return nil }
        do throws(StoreError) {
            try seal.check(row, traced: traced)
            _ = try seal.check(versions, of: row)
            return nil
        } catch {
            return error.message
        }
    }

    /// Every earlier generation of a rekeyed dossier's key must be there and unwrap (the trace
    /// entries written before the rekey are sealed under them).
    private func checkEarlierGenerations(of dossier: DossierRow, into result: inout ContentVerification) async throws(StoreError) {
        guard dossier.keyGeneration > 1 else { return }
        let opened = try await archivedDossierKeys(DossierID(unchecked: dossier.id)).count
        if opened != Int(dossier.keyGeneration) - 1 {
            result.found.append(
                "dossier \(dossier.id): \(Int(dossier.keyGeneration) - 1 - opened) earlier key generation(s) missing or do not unwrap "
                    + "(trace entries before its rekey cannot be read)")
        }
    }

    /// Blobs no index row names, older than a minute (younger ones may be stores in flight:
    /// linked, their row not yet committed). The index's names are read after the documents,
    /// so that rows committed meanwhile count.
    private func findOrphans(into result: inout ContentVerification) async throws(StoreError) {
        let (known, unreadable) = try await index.packedBlobNames()
        let cutoff = Int64(Date().timeIntervalSince1970) - 60
        var reconciliation = BlobReconciliation(known: known)
        var unnamed = 0
        for shard in 0..<256 {
            for name in reconciliation.orphans(inShard: shard, listed: try await blobs.blobNames(inShard: shard)) {
                let modified: Int64?
                do {
                    modified = try await blobs.modificationTime(of: name)
                } catch {
                    result.found.append("blob \(name): cannot read its time (\(error.message))")
                    continue
                }
                guard let modified, modified < cutoff else { continue }
                // With rows the index cannot be read whole from, any of these may be theirs:
                // not orphans to delete, and not reported as such.
                if unreadable > 0 {
                    unnamed += 1
                    continue
                }
                result.orphanBlobs += 1
                result.found.append("blob \(name): no index row names it (an orphan)")
            }
        }
        if unreadable > 0 {
            result.found.append(
                "index: \(unreadable) document row(s) whose id or blob version cannot be read; \(unnamed) blob(s) no readable row "
                    + "names may be theirs (not counted as orphans)")
        }
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
