import CoffreCrypto
public import CoffreDomain

/// A document's plaintext, decrypted record by record as the caller asks for it.
///
/// Holds at most two records in memory. Every record is authenticated before its bytes are
/// returned; the FINAL tag must come exactly at the end of the blob, and the plaintext must
/// match the recorded length and SHA-256, or `next()` throws an integrity error.
public final class DocumentContent: @unchecked Sendable {
    // @unchecked: one owner at a time. The handler opens it, then hands it to the response body
    // writer and never touches it again; nothing in it is shared between tasks.

    /// The document's metadata.
    public let record: DocumentRecord
    private let reader: any BlobReader
    private var decryptor: BlobDecryptor
    /// Hashes a large document's plaintext beside the decryption (nil: the decryptor does).
    private let hasher: BackgroundHasher?
    private var offset: Int64
    private var pending: [UInt8]?
    private var delivered: Int64 = 0
    private var finished = false

    private init(record: DocumentRecord, reader: any BlobReader, decryptor: consuming BlobDecryptor, hasher: BackgroundHasher?) {
        self.record = record
        self.reader = reader
        self.decryptor = decryptor
        self.hasher = hasher
        self.offset = Int64(BlobHeader.byteCount)
    }

    static func open(record: DocumentRecord, reader: any BlobReader, key: SymmetricKey, arena: SecureArena) async throws(StoreError)
        -> DocumentContent
    {
        let headerBytes = try await reader.read(at: 0, count: BlobHeader.byteCount)
        let hasher = record.size >= BackgroundHasher.threshold ? BackgroundHasher.onOwnQueue() : nil
        let decryptor = try integrity { () throws(CryptoError) in
            try BlobDecryptor(
                header: headerBytes, key: key, associatedData: Array(record.id.value.utf8), hashesPlaintext: hasher == nil, arena: arena)
        }
        let content = DocumentContent(record: record, reader: reader, decryptor: decryptor, hasher: hasher)
        content.pending = try await content.readRecord()
        return content
    }

    /// The next piece of plaintext, or nil at the end.
    ///
    /// Each record is held back until the one after it has been authenticated. Otherwise a
    /// document whose length is a multiple of the chunk size (its FINAL record is empty) would
    /// have every byte of content sent before the FINAL tag and the whole-content hash were
    /// checked: a damaged trailer would go unnoticed by the client.
    public func next() async throws(StoreError) -> [UInt8]? {
        guard let current = pending else { return nil }
        pending = nil
        pending = finished ? nil : try await readRecord()
        return current
    }

    /// The whole plaintext, if opening the document already decrypted and checked all of it (a
    /// document of one record: its hash and length matched); nil otherwise, and nothing taken.
    public func takeWholeIfChecked() -> [UInt8]? {
        guard finished, let whole = pending else { return nil }
        pending = nil
        return whole
    }

    /// Releases the blob.
    public func close() async { await reader.close() }

    private func readRecord() async throws(StoreError) -> [UInt8]? {
        if finished { return nil }
        let remaining = reader.size - offset
        let take = Int(min(Int64(decryptor.header.recordSize), max(remaining, 0)))
        let bytes = try await reader.read(at: offset, count: take)
        guard bytes.count == take else { throw StoreError(.integrity, "document \(record.id): blob shorter than expected") }
        offset += Int64(take)
        let isLast = offset >= reader.size
        var plaintext: [UInt8] = []
        // Array.withUnsafeBytes rethrows untyped errors; keep the typed error inside the closure.
        let failure = bytes.withUnsafeBytes { raw -> CryptoError? in
            do throws(CryptoError) {
                try decryptor.open(record: raw, isLast: isLast, to: &plaintext)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            throw StoreError(.integrity, "document \(record.id): blob failed authentication (\(failure))")
        }
        delivered += Int64(plaintext.count)
        await hasher?.update(plaintext, count: plaintext.count)
        if isLast {
            finished = true
            let inlineDigest = try Self.integrity { () throws(CryptoError) in try decryptor.finish() }
            guard let digest = await hasher?.finalize() ?? inlineDigest else { preconditionFailure("the plaintext was not hashed") }
            guard delivered == record.size, constantTimeEquals(digest, record.sha256) else {
                throw StoreError(.integrity, "document \(record.id): content does not match its recorded hash")
            }
        }
        return plaintext
    }

    private static func integrity<T: ~Copyable>(_ body: () throws(CryptoError) -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch .arenaExhausted {
            throw StoreError(.busy, "too many requests in flight for the key arena; retry")
        } catch {
            throw StoreError(.integrity, "blob failed authentication (\(error))")
        }
    }
}
