import CSodium

/// Decrypts a blob record by record, and refuses anything but a complete, untouched stream.
///
/// The caller reads records of `header.recordSize` bytes and says which one is the last in the
/// file. The decryptor demands that the FINAL tag arrives exactly on the last record: a FINAL
/// earlier means bytes were appended, no FINAL at the end means the blob was truncated (a naive
/// reader would accept it as a shorter, "valid" document).
public struct BlobDecryptor: ~Copyable {
    /// The parsed header.
    public let header: BlobHeader
    private let state: StreamState
    private let associatedData: [UInt8]
    /// Where a record is opened; its bytes are released to the caller only once authenticated.
    private let opened: UnsafeMutableRawBufferPointer
    private var sawFinal = false
    private let hasher: SHA256Hasher?

    /// Checks the header and prepares to decrypt under `key`. `hashesPlaintext` false leaves the
    /// SHA-256 to the caller (on another thread).
    public init(
        header bytes: some Collection<UInt8>,
        key: SymmetricKey,
        associatedData: [UInt8],
        hashesPlaintext: Bool = true,
        arena: SecureArena
    ) throws(CryptoError) {
        Sodium.ensureInitialised()
        let parsed = try BlobHeader(decoding: bytes)
        let pullState = try StreamState(in: arena)
        let ok = parsed.streamHeader.withUnsafeBufferPointer {
            crypto_secretstream_xchacha20poly1305_init_pull(pullState.pointer, $0.baseAddress!, key.pointer) == 0
        }
        guard ok else { throw .malformed("invalid stream header") }
        header = parsed
        state = pullState
        self.associatedData = parsed.recordAssociatedData(associatedData)
        opened = .allocate(byteCount: max(parsed.chunkSize, 1), alignment: 16)
        hasher = hashesPlaintext ? SHA256Hasher() : nil
    }

    /// Decrypts one record and appends its plaintext to `output`.
    /// - Parameter isLast: whether the file has no bytes after this record.
    public mutating func open(
        record: UnsafeRawBufferPointer,
        isLast: Bool,
        to output: inout [UInt8]
    ) throws(CryptoError) {
        guard !sawFinal else { throw .trailingData }
        guard record.count >= BlobHeader.recordOverhead, record.count <= header.recordSize else {
            throw .truncated
        }
        let plainCount = record.count - BlobHeader.recordOverhead
        var tag: UInt8 = 0
        var written: UInt64 = 0
        let status = crypto_secretstream_xchacha20poly1305_pull(
            state.pointer, opened.baseAddress!.assumingMemoryBound(to: UInt8.self), &written, &tag,
            record.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(record.count),
            associatedData, UInt64(associatedData.count))
        guard status == 0 else { throw .authenticationFailed }
        let isFinal = tag == UInt8(crypto_secretstream_xchacha20poly1305_TAG_FINAL)
        if isFinal != isLast { throw isFinal ? .trailingData : .truncated }
        // Only the last record may be shorter than a full chunk.
        if !isLast && plainCount != header.chunkSize { throw .truncated }
        let plaintext = UnsafeRawBufferPointer(start: opened.baseAddress, count: plainCount)
        hasher?.update(plaintext)
        output.append(contentsOf: plaintext)
        sawFinal = isFinal
    }

    /// Confirms the stream ended with its FINAL record and returns the plaintext's SHA-256 (nil
    /// if the caller hashes it).
    public mutating func finish() throws(CryptoError) -> [UInt8]? {
        guard sawFinal else { throw .truncated }
        return hasher?.finalize()
    }

    deinit {
        sodium_memzero(opened.baseAddress!, opened.count)
        opened.deallocate()
    }
}
