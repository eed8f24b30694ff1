import CSodium

/// Encrypts a document as a blob: the header, then fixed-size records, the last one tagged FINAL.
///
/// Plaintext arrives in pieces of any size; whole chunks are sealed as soon as they are
/// complete, so memory stays bounded by one chunk whatever the document's size. The encryptor
/// also counts the plaintext and hashes it (SHA-256) on the way through.
public struct BlobEncryptor: ~Copyable {
    /// Default plaintext size of a record.
    public static let defaultChunkSize = 64 * 1024

    /// The header, to write before the first record.
    public let header: BlobHeader
    private let state: StreamState
    private let associatedData: [UInt8]
    private var pending: [UInt8]
    private let hasher = SHA256Hasher()
    private var finished = false
    /// Plaintext bytes accepted so far.
    public private(set) var plaintextCount = 0

    /// Starts a stream under `key`. `associatedData` (the document id) is bound to every record.
    public init(
        key: SymmetricKey,
        associatedData: [UInt8],
        chunkSize: Int = defaultChunkSize,
        arena: SecureArena
    ) throws(CryptoError) {
        Sodium.ensureInitialised()
        let pushState = try StreamState(in: arena)
        var streamHeader = [UInt8](repeating: 0, count: BlobHeader.streamHeaderBytes)
        _ = crypto_secretstream_xchacha20poly1305_init_push(pushState.pointer, &streamHeader, key.pointer)
        state = pushState
        header = BlobHeader(chunkSize: chunkSize, streamHeader: streamHeader)
        self.associatedData = associatedData
        pending = []
        pending.reserveCapacity(chunkSize)
    }

    /// Accepts plaintext; appends every record it completes to `output`.
    public mutating func append(_ plaintext: UnsafeRawBufferPointer, to output: inout [UInt8]) {
        precondition(!finished, "append after finish")
        hasher.update(plaintext)
        plaintextCount += plaintext.count
        var offset = 0
        while offset < plaintext.count {
            let take = min(header.chunkSize - pending.count, plaintext.count - offset)
            pending.append(contentsOf: plaintext[offset..<(offset + take)])
            offset += take
            if pending.count == header.chunkSize {
                seal(tag: UInt8(crypto_secretstream_xchacha20poly1305_TAG_MESSAGE), to: &output)
            }
        }
    }

    /// Seals what remains (possibly nothing) as the FINAL record and returns the SHA-256 of the
    /// whole plaintext.
    public mutating func finish(to output: inout [UInt8]) -> [UInt8] {
        precondition(!finished, "finish called twice")
        seal(tag: UInt8(crypto_secretstream_xchacha20poly1305_TAG_FINAL), to: &output)
        finished = true
        return hasher.finalize()
    }

    private mutating func seal(tag: UInt8, to output: inout [UInt8]) {
        let start = output.count
        output.append(contentsOf: repeatElement(0, count: pending.count + BlobHeader.recordOverhead))
        output.withUnsafeMutableBufferPointer { out in
            var written: UInt64 = 0
            _ = crypto_secretstream_xchacha20poly1305_push(
                state.pointer, out.baseAddress! + start, &written,
                pending, UInt64(pending.count),
                associatedData, UInt64(associatedData.count), tag)
        }
        secureZero(&pending)
        pending.removeAll(keepingCapacity: true)
    }

    deinit {
        // An abandoned upload may leave part of a chunk behind; wipe it (the buffer is ours alone).
        pending.withUnsafeBufferPointer { buffer in
            if let base = buffer.baseAddress { sodium_memzero(UnsafeMutableRawPointer(mutating: base), buffer.count) }
        }
    }
}
