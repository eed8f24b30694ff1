import CSodium

/// Encrypts a document as a blob: the header, then fixed-size records, the last one tagged FINAL.
///
/// Plaintext arrives in pieces of any size; whole chunks are sealed as soon as they are
/// complete, straight from the caller's buffer when it holds a whole chunk, so memory stays
/// bounded by one chunk whatever the document's size. The encryptor also counts the plaintext
/// and, unless the caller hashes it elsewhere, hashes it (SHA-256) on the way through.
public struct BlobEncryptor: ~Copyable {
    /// Default plaintext size of a record.
    public static let defaultChunkSize = 64 * 1024

    /// The header, to write before the first record.
    public let header: BlobHeader
    private let state: StreamState
    private let associatedData: [UInt8]
    /// Plaintext of an incomplete chunk, waiting for more (zeroed when released).
    private let pending: UnsafeMutableRawBufferPointer
    private var pendingCount = 0
    /// Where a record is sealed before it is appended to the caller's output.
    private let sealed: UnsafeMutableRawBufferPointer
    private let hasher: SHA256Hasher?
    private var finished = false
    /// Plaintext bytes accepted so far.
    public private(set) var plaintextCount = 0

    /// Starts a stream under `key`. `associatedData` (the document id) is bound to every record,
    /// with the header's fields. `formatVersion` is the current one; 1 only to test reading old
    /// blobs. `hashesPlaintext` false leaves the SHA-256 to the caller (on another thread).
    public init(
        key: SymmetricKey,
        associatedData: [UInt8],
        chunkSize: Int = defaultChunkSize,
        formatVersion: UInt8 = BlobHeader.version,
        hashesPlaintext: Bool = true,
        arena: SecureArena
    ) throws(CryptoError) {
        Sodium.ensureInitialised()
        let pushState = try StreamState(in: arena)
        var streamHeader = [UInt8](repeating: 0, count: BlobHeader.streamHeaderBytes)
        _ = crypto_secretstream_xchacha20poly1305_init_push(pushState.pointer, &streamHeader, key.pointer)
        state = pushState
        header = BlobHeader(formatVersion: formatVersion, chunkSize: chunkSize, streamHeader: streamHeader)
        self.associatedData = header.recordAssociatedData(associatedData)
        hasher = hashesPlaintext ? SHA256Hasher() : nil
        pending = .allocate(byteCount: chunkSize, alignment: 16)
        sealed = .allocate(byteCount: chunkSize + BlobHeader.recordOverhead, alignment: 16)
    }

    /// Accepts plaintext; appends every record it completes to `output`.
    public mutating func append(_ plaintext: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        precondition(!finished, "append after finish")
        guard let base = plaintext.baseAddress, plaintext.count > 0 else { return }
        hasher?.update(plaintext)
        plaintextCount += plaintext.count
        let chunkSize = header.chunkSize
        var offset = 0
        while offset < plaintext.count {
            let remaining = plaintext.count - offset
            if pendingCount == 0 && remaining >= chunkSize {
                seal(UnsafeRawBufferPointer(start: base + offset, count: chunkSize), tag: messageTag, to: &output)
                offset += chunkSize
                continue
            }
            let take = min(chunkSize - pendingCount, remaining)
            (pending.baseAddress! + pendingCount).copyMemory(from: base + offset, byteCount: take)
            pendingCount += take
            offset += take
            if pendingCount == chunkSize {
                seal(UnsafeRawBufferPointer(start: pending.baseAddress, count: chunkSize), tag: messageTag, to: &output)
                pendingCount = 0
            }
        }
    }

    /// Seals what remains (possibly nothing) as the FINAL record and returns the SHA-256 of the
    /// whole plaintext (nil if the caller hashes it).
    public mutating func finish(to output: inout [UInt8]) -> [UInt8]? {
        precondition(!finished, "finish called twice")
        seal(UnsafeRawBufferPointer(start: pending.baseAddress, count: pendingCount), tag: finalTag, to: &output)
        pendingCount = 0
        finished = true
        return hasher?.finalize()
    }

    private var messageTag: UInt8 { UInt8(crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) }
    private var finalTag: UInt8 { UInt8(crypto_secretstream_xchacha20poly1305_TAG_FINAL) }

    private func seal(_ chunk: UnsafeRawBufferPointer, tag: UInt8, to output: inout [UInt8]) {
        var written: UInt64 = 0
        _ = crypto_secretstream_xchacha20poly1305_push(
            state.pointer, sealed.baseAddress!.assumingMemoryBound(to: UInt8.self), &written,
            chunk.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(chunk.count),
            associatedData, UInt64(associatedData.count), tag)
        output.append(contentsOf: UnsafeRawBufferPointer(start: sealed.baseAddress, count: Int(written)))
    }

    deinit {
        // An abandoned upload may leave part of a chunk behind; wipe it before release.
        sodium_memzero(pending.baseAddress!, pending.count)
        pending.deallocate()
        sealed.deallocate()
    }
}
