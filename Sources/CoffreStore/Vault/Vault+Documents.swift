import CoffreCrypto
import CoffreDomain
import Foundation
import Logging
import NIOCore

extension Vault {
    /// Encrypted bytes are handed to the blob store in batches of about this size, so that a
    /// store costs one thread hop per batch rather than per network read.
    static let writeBatchSize = 256 * 1024

    /// The free space stores leave on the index's disk for the trace (or a twentieth of the
    /// disk, if less): at about 12 KiB of log a read, thousands of reads and refusals.
    static let traceReserve: Int64 = 64 << 20

    /// Stores a document in the patient's dossier, untraced (for the vault's own tests and
    /// tools: requests go through `OperationPipeline.store`), streaming `content` to disk in
    /// bounded memory. Returns only once the blob is durable and its index row committed.
    ///
    /// - Parameters:
    ///   - declaredLength: the length the client announced, if any; content that ends short of
    ///     it is an incomplete upload and is discarded.
    ///   - replacing: the current version this one replaces; it becomes `superseded` in the
    ///     same transaction that records the new one.
    /// - Throws: `tooLarge` past the configured limit, `incompleteUpload`, `noSpace`, `io`,
    ///   `conflict` when the replaced version is no longer current; in every case nothing is
    ///   left behind.
    func storeDocument<Content: AsyncSequence<ByteBuffer, any Error>>(
        in ins: INS,
        _ metadata: NewDocument,
        content: Content,
        declaredLength: Int64?,
        replacing: DocumentID? = nil
    ) async throws(StoreError) -> DocumentRecord {
        let dossier = try await self.dossier(for: ins)
        let staged = try await stageBlob(content, declaredLength: declaredLength)
        do {
            let (row, fields) = try documentRow(for: staged, metadata, replacing: replacing, in: dossier)
            try await index.write("record a document", try recordDocument(row, in: dossier))
            return try record(from: row, fields: fields)
        } catch {
            await discard(staged)
            throw error
        }
    }

    /// A document's content, encrypted under its own key and durable under its own name, that
    /// no index row names yet (a start after a crash would remove it).
    struct StagedBlob: Sendable {
        let id: DocumentID
        let documentKey: SymmetricKey
        let size: Int64
        let sha256: [UInt8]
    }

    /// Encrypts `content` into a durable blob under a fresh document key.
    /// - Throws: `tooLarge`, `incompleteUpload`, `noSpace`, `io`; nothing is left behind.
    func stageBlob<Content: AsyncSequence<ByteBuffer, any Error>>(
        _ content: Content, declaredLength: Int64?
    ) async throws(StoreError) -> StagedBlob {
        if let declaredLength, declaredLength > configuration.maxDocumentSize {
            throw StoreError(.tooLarge, "the document is \(declaredLength) bytes; the limit is \(configuration.maxDocumentSize)")
        }
        // Documents stop before the disk is full, so that reads and refusals, each of which
        // writes its trace entry, go on: the index's disk keeps a reserve for the trace.
        if let space = index.diskSpace() {
            let reserve = min(Self.traceReserve, space.total / 20)
            if space.free - (declaredLength ?? 0) < reserve {
                throw StoreError(.noSpace, "the disk is full for documents: its last \(reserve / 1024) KiB are kept for the trace")
            }
        }
        let id = DocumentID(unchecked: SecureRandom.hexIdentifier())
        let documentKey = try Self.crypto { () throws(CryptoError) in try SymmetricKey.random(in: arena) }
        let writer = try await blobs.makeWriter(for: BlobName(id))
        do {
            let written = try await encrypt(content, into: writer, key: documentKey, documentID: id, declaredLength: declaredLength)
            try await writer.commit()
            return StagedBlob(id: id, documentKey: documentKey, size: written.size, sha256: written.sha256)
        } catch {
            await writer.abort()
            throw error
        }
    }

    /// Removes a staged blob no row will name (the store failed or was refused).
    func discard(_ staged: StagedBlob) async {
        try? await blobs.remove(BlobName(staged.id))
    }

    /// The index row that names a staged blob in `dossier`: its key wrapped under the dossier
    /// key (of the dossier's current generation), its metadata sealed.
    func documentRow(
        for staged: StagedBlob, _ metadata: NewDocument, replacing: DocumentID?, in dossier: DossierRecord
    ) throws(StoreError) -> (DocumentRow, SealedDocumentFields) {
        guard let dossierKey = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        let generation = dossier.keyGeneration
        let wrappedKey = KeyWrap.wrap(
            staged.documentKey, with: dossierKey, context: Self.documentKeyContext(dossier.id, staged.id, generation))
        let fields = SealedDocumentFields(
            title: metadata.title, typeCode: metadata.typeCode, careDate: metadata.careDate,
            author: metadata.author, sha256: Hex.encode(staged.sha256), masked: metadata.masked,
            hiddenFromPatient: metadata.hiddenFromPatient, hiddenFromRepresentatives: metadata.hiddenFromRepresentatives,
            releasedAt: nil, hiddenSince: metadata.hiddenFromPatient ? metadata.hiddenSince : nil)
        var row = DocumentRow(
            id: staged.id.value, dossierId: dossier.id.value, documentClass: metadata.documentClass.rawValue,
            status: DocumentStatus.current.rawValue, mediaType: metadata.mediaType, size: staged.size,
            uploadedAt: clock.now(), replaces: replacing?.value, keyGeneration: Int64(generation), wrappedKey: Data(wrappedKey),
            sealed: Data())
        row.sealed = Data(try Self.seal(fields, key: dossierKey, associatedData: row.associatedData))
        return (row, fields)
    }

    /// Writes a document row in the caller's transaction: a new document, or a new version
    /// that supersedes the one it replaces (refused if that one is no longer current).
    func recordDocument(_ row: DocumentRow, in dossier: DossierRecord) throws(StoreError) -> TraceWriter.Change {
        guard let dossierKey = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        let vault = self
        return { transaction in
            guard row.replaces != nil else {
                try transaction.insertNewDocument(row)
                return try vault.reseal(row.dossierId, removing: [], adding: [row], transaction)
            }
            var (removed, added): ([DocumentRow], [DocumentRow]) = ([], [row])
            try transaction.insertReplacement(row) { old in
                removed.append(old)
                let superseded = try vault.resealed(old, key: dossierKey) { row, _ in row.status = DocumentStatus.superseded.rawValue }
                added.append(superseded)
                return superseded
            }
            try vault.reseal(row.dossierId, removing: removed, adding: added, transaction)
        }
    }

    func encrypt<Content: AsyncSequence<ByteBuffer, any Error>>(
        _ content: Content,
        into writer: any BlobWriter,
        key: SymmetricKey,
        documentID: DocumentID,
        declaredLength: Int64?
    ) async throws(StoreError) -> (size: Int64, sha256: [UInt8]) {
        // A large document is hashed on a thread of its own while this one encrypts it.
        let hasher = (declaredLength ?? 0) >= BackgroundHasher.threshold ? BackgroundHasher.onOwnQueue() : nil
        var encryptor = try Self.crypto { () throws(CryptoError) in
            try BlobEncryptor(
                key: key, associatedData: Array(documentID.value.utf8), chunkSize: configuration.chunkSize,
                hashesPlaintext: hasher == nil, arena: arena)
        }
        var output = encryptor.header.encoded
        output.reserveCapacity(Self.writeBatchSize + configuration.chunkSize + BlobHeader.recordOverhead)
        var received: Int64 = 0
        do {
            for try await buffer in content {
                received += Int64(buffer.readableBytes)
                if received > configuration.maxDocumentSize {
                    throw StoreError(.tooLarge, "the document exceeds the limit of \(configuration.maxDocumentSize) bytes")
                }
                await hasher?.update(RetainedBytes(buffer) { $0.withUnsafeReadableBytes($1) }, count: buffer.readableBytes)
                buffer.withUnsafeReadableBytes { encryptor.append($0, to: &output) }
                if output.count >= Self.writeBatchSize {
                    try await writer.write(output)
                    output.removeAll(keepingCapacity: true)
                }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.incompleteUpload, "the upload was cut off before its end")
        }
        if let declaredLength, received != declaredLength {
            throw StoreError(.incompleteUpload, "the upload ended after \(received) of \(declaredLength) bytes")
        }
        let inlineDigest = encryptor.finish(to: &output)
        try await writer.write(output)
        guard let digest = await hasher?.finalize() ?? inlineDigest else { preconditionFailure("the plaintext was not hashed") }
        return (received, digest)
    }

    /// The metadata of every document of the dossier (current versions, or all versions).
    func documents(in ins: INS, includeSuperseded: Bool = false) async throws(StoreError) -> [DocumentRecord] {
        try await documents(in: try await dossier(for: ins), includeSuperseded: includeSuperseded)
    }

    /// The metadata of every document of a dossier the caller has opened already, each row
    /// checked against the dossier's seal.
    func documents(in dossier: DossierRecord, includeSuperseded: Bool = false) async throws(StoreError) -> [DocumentRecord] {
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        guard let checked = try await checkedDossier(.id(dossier.id.value), listing: includeSuperseded) else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        try Self.requireKeyGeneration(of: dossier, in: checked.row)
        let rows = checked.documents
        var records: [DocumentRecord] = []
        records.reserveCapacity(rows.count)
        for row in rows { records.append(try record(from: row, dossierKey: key)) }
        return records
    }

    /// The metadata of one document of the dossier.
    func document(_ id: DocumentID, in ins: INS) async throws(StoreError) -> DocumentRecord {
        try await document(id, in: try await dossier(for: ins))
    }

    /// The metadata of one document of a dossier the caller has opened already.
    func document(_ id: DocumentID, in dossier: DossierRecord) async throws(StoreError) -> DocumentRecord {
        try await openDocument(id, in: dossier).record
    }

    /// Opens a document's content for streaming. The header and the first record are read and
    /// authenticated here, so that a wrong key, a swapped blob or a damaged start is refused
    /// before anything is sent; later damage stops the stream with an integrity error.
    func openContent(_ id: DocumentID, in ins: INS) async throws(StoreError) -> DocumentContent {
        try await openContent(id, in: try await dossier(for: ins))
    }

    /// Opens a document's content in a dossier the caller has opened already.
    func openContent(_ id: DocumentID, in dossier: DossierRecord) async throws(StoreError) -> DocumentContent {
        try await openContent(of: try await openDocument(id, in: dossier))
    }

    /// A document of an opened dossier: its metadata for the access decision, and what opening
    /// its content needs, so that a fetch reads and decodes the row once.
    public struct OpenedDocument: Sendable {
        public let record: DocumentRecord
        let row: DocumentRow
        let dossierKey: SymmetricKey
    }

    /// Reads one document of an opened dossier, with the dossier's row, checked against its
    /// seal, for a decision and then perhaps its content.
    func openDocument(_ id: DocumentID, in dossier: DossierRecord) async throws(StoreError) -> OpenedDocument {
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        guard let checked = try await checkedDossier(.id(dossier.id.value), document: id.value) else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        guard let row = checked.document else { throw StoreError(.documentNotFound, "no document \(id) in this dossier") }
        try Self.requireKeyGeneration(of: dossier, in: checked.row)
        return try openedDocument(row, of: checked.row, key: key)
    }

    /// A document row read in one snapshot with its dossier's row, opened.
    func openedDocument(_ row: DocumentRow, of dossier: DossierRow, key: SymmetricKey) throws(StoreError) -> OpenedDocument {
        guard row.keyGeneration == dossier.keyGeneration else {
            // A dossier and its rows move together at a rekey: a row that differs from its
            // dossier was changed behind Coffre's back.
            throw StoreError(.integrity, "document \(row.id): its row names another key generation than its dossier")
        }
        return OpenedDocument(record: try record(from: row, dossierKey: key), row: row, dossierKey: key)
    }

    /// Opens the content of a document read with `openDocument`.
    func openContent(of document: OpenedDocument) async throws(StoreError) -> DocumentContent {
        let (row, dossierKey, record, id) = (document.row, document.dossierKey, document.record, document.record.id)
        let dossierID = DossierID(unchecked: row.dossierId)
        let documentKey = try Self.crypto { () throws(CryptoError) in
            try KeyWrap.unwrap(
                Array(row.wrappedKey), with: dossierKey,
                context: Self.documentKeyContext(dossierID, id, UInt32(truncatingIfNeeded: row.keyGeneration)), in: arena)
        }
        let reader: any BlobReader
        do {
            reader = try await blobs.openReader(for: BlobName(id, version: UInt32(truncatingIfNeeded: row.blobVersion)))
        } catch {
            try await rekeyedMeanwhile(row)
            throw error
        }
        do {
            let content = try await DocumentContent.open(record: record, reader: reader, key: documentKey, arena: arena)
            return content
        } catch {
            await reader.close()
            try await rekeyedMeanwhile(row)
            logger.error(
                "integrity failure on read",
                metadata: CoffreEvent.integrityFailure.metadata(["dossier.id": "\(dossierID)", "document.id": "\(id)"]))
            throw error
        }
    }

    /// A rekey with re-encryption that committed between `openDocument` and `openContent`
    /// moved the blob: a conflict to retry, not damage.
    private func rekeyedMeanwhile(_ row: DocumentRow) async throws(StoreError) {
        let now = try? await index.document(id: row.id, dossierID: row.dossierId)
        if let now, now.keyGeneration != row.keyGeneration || now.blobVersion != row.blobVersion {
            throw StoreError(.conflict, "the dossier was given a new key while this request ran; retry")
        }
    }

    /// A rekey that committed after this request opened the dossier gave it a key other than
    /// the one the request holds: a conflict to retry.
    static func requireKeyGeneration(of dossier: DossierRecord, in row: DossierRow) throws(StoreError) {
        guard row.keyGeneration == Int64(dossier.keyGeneration) else {
            throw StoreError(.conflict, "the dossier was given a new key while this request ran; retry")
        }
    }

    func record(from row: DocumentRow, dossierKey: SymmetricKey) throws(StoreError) -> DocumentRecord {
        try record(from: row, fields: try Self.open(Array(row.sealed), key: dossierKey, associatedData: row.associatedData))
    }

    /// A row's record from its sealed fields, already opened.
    func record(from row: DocumentRow, fields: SealedDocumentFields) throws(StoreError) -> DocumentRecord {
        let id = DocumentID(unchecked: row.id)
        guard let documentClass = DocumentClass(rawValue: row.documentClass),
            let status = DocumentStatus(rawValue: row.status),
            let sha256 = Hex.decode(fields.sha256)
        else { throw StoreError(.integrity, "document \(id) has an invalid index row") }
        return DocumentRecord(
            id: id, dossierID: DossierID(unchecked: row.dossierId), documentClass: documentClass, title: fields.title,
            typeCode: fields.typeCode, careDate: fields.careDate, mediaType: row.mediaType, author: fields.author,
            size: row.size, sha256: sha256, status: status, replaces: row.replaces.flatMap(DocumentID.init),
            uploadedAt: row.uploadedAt, hiddenFromPatient: fields.hiddenFromPatient,
            hiddenFromRepresentatives: fields.hiddenFromRepresentatives, masked: fields.masked, releasedAt: fields.releasedAt,
            hiddenSince: fields.hiddenSince)
    }

    /// The row with `change` applied to its clear columns and sealed fields, sealed again as
    /// its next version (the clear columns and the version are part of the associated data, so
    /// all change together).
    func resealed(
        _ row: DocumentRow, key: SymmetricKey, _ change: (inout DocumentRow, inout SealedDocumentFields) throws(StoreError) -> Void
    ) throws(StoreError) -> DocumentRow {
        var fields: SealedDocumentFields = try Self.open(Array(row.sealed), key: key, associatedData: row.associatedData)
        var updated = row
        try change(&updated, &fields)
        updated.version = row.version + 1
        updated.sealed = Data(try Self.seal(fields, key: key, associatedData: updated.associatedData))
        return updated
    }

    static func documentKeyContext(_ dossier: DossierID, _ document: DocumentID, _ generation: UInt32) -> WrapContext {
        WrapContext(purpose: "document-key", owners: [dossier.value, document.value], wrappingKeyVersion: generation)
    }

}
