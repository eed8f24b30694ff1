import CoffreCrypto
import Testing

/// The blob format: round trips at every size around chunk boundaries, and every kind of damage
/// (flip, truncation, extension, reordering, wrong key or document) refused.
@Suite struct BlobStreamTests {
    let arena: SecureArena
    let key: SymmetricKey
    let documentID = Array("0123456789abcdef0123456789abcdef".utf8)
    static let chunkSize = 1024

    init() throws {
        arena = try SecureArena(slotCount: 64)
        key = try SymmetricKey.random(in: arena)
    }

    func encrypt(_ plaintext: [UInt8], pieces: Int = 3) throws -> (blob: [UInt8], sha256: [UInt8]) {
        var encryptor = try BlobEncryptor(key: key, associatedData: documentID, chunkSize: Self.chunkSize, arena: arena)
        var output = encryptor.header.encoded
        let step = max(1, plaintext.count / pieces)
        var offset = 0
        while offset < plaintext.count {
            let end = min(plaintext.count, offset + step)
            plaintext[offset..<end].withUnsafeBytes { encryptor.append($0, to: &output) }
            offset = end
        }
        let digest = encryptor.finish(to: &output) ?? []
        return (output, digest)
    }

    func decrypt(_ blob: [UInt8], key: SymmetricKey? = nil, documentID: [UInt8]? = nil) throws -> [UInt8] {
        var decryptor = try BlobDecryptor(
            header: blob.prefix(BlobHeader.byteCount), key: key ?? self.key, associatedData: documentID ?? self.documentID, arena: arena)
        var offset = BlobHeader.byteCount
        var plaintext: [UInt8] = []
        repeat {
            let take = min(decryptor.header.recordSize, blob.count - offset)
            let isLast = offset + take >= blob.count
            try blob[offset..<(offset + take)].withUnsafeBytes { raw in
                try decryptor.open(record: raw, isLast: isLast, to: &plaintext)
            }
            offset += take
        } while offset < blob.count
        _ = try decryptor.finish()
        return plaintext
    }

    @Test(arguments: [0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 3 * chunkSize, 3 * chunkSize + 5])
    func roundTrip(size: Int) throws {
        let plaintext = SecureRandom.bytes(size)
        let (blob, digest) = try encrypt(plaintext)
        #expect(try decrypt(blob) == plaintext)
        #expect(digest == SHA256Hasher.hash(plaintext))
        // Every record but the last is full; the last carries FINAL, even when empty.
        let records =
            (blob.count - BlobHeader.byteCount + Self.chunkSize + BlobHeader.recordOverhead - 1)
            / (Self.chunkSize + BlobHeader.recordOverhead)
        #expect(records == size / Self.chunkSize + 1)
    }

    @Test func truncationAtARecordBoundaryIsDetected() throws {
        let (blob, _) = try encrypt(SecureRandom.bytes(3 * Self.chunkSize + 10))
        let recordSize = Self.chunkSize + BlobHeader.recordOverhead
        // Drop the FINAL record: what remains is a valid-looking prefix of whole records.
        let truncated = Array(blob.prefix(BlobHeader.byteCount + 3 * recordSize))
        #expect(throws: CryptoError.truncated) { try decrypt(truncated) }
    }

    @Test func truncationInsideARecordIsDetected() throws {
        let (blob, _) = try encrypt(SecureRandom.bytes(2 * Self.chunkSize))
        #expect(throws: CryptoError.self) { try decrypt(Array(blob.dropLast(3))) }
    }

    @Test func headerOnlyIsTruncated() throws {
        let (blob, _) = try encrypt([])
        #expect(throws: CryptoError.truncated) { _ = try decrypt(Array(blob.prefix(BlobHeader.byteCount)) + []) }
    }

    @Test func bytesAfterFinalAreDetected() throws {
        let (blob, _) = try encrypt(SecureRandom.bytes(100))
        #expect(throws: CryptoError.self) { try decrypt(blob + [0]) }
        #expect(throws: CryptoError.self) { try decrypt(blob + blob[BlobHeader.byteCount...]) }
    }

    @Test func everyFlippedByteIsDetected() throws {
        let (blob, _) = try encrypt(SecureRandom.bytes(2 * Self.chunkSize + 7))
        for position in stride(from: 0, to: blob.count, by: 97) {
            var damaged = blob
            damaged[position] ^= 0x01
            #expect(throws: CryptoError.self, "flip at \(position)") { try decrypt(damaged) }
        }
    }

    @Test func swappedRecordsAreDetected() throws {
        let (blob, _) = try encrypt(SecureRandom.bytes(3 * Self.chunkSize + 1))
        let recordSize = Self.chunkSize + BlobHeader.recordOverhead
        let first = BlobHeader.byteCount
        var swapped = blob
        swapped.replaceSubrange(first..<(first + recordSize), with: blob[(first + recordSize)..<(first + 2 * recordSize)])
        swapped.replaceSubrange((first + recordSize)..<(first + 2 * recordSize), with: blob[first..<(first + recordSize)])
        #expect(throws: CryptoError.authenticationFailed) { try decrypt(swapped) }
    }

    /// Every header field is bound: a larger chunk size written into a one-record blob's
    /// header (the record still fits) or another version byte fails authentication.
    @Test func headerFieldsAreAuthenticated() throws {
        let plaintext = SecureRandom.bytes(100)
        let (blob, _) = try encrypt(plaintext)
        #expect(blob[4] == 2)
        var larger = blob
        larger[8] ^= 0x01  // chunk size 1024 → 1280: the one record is still read whole
        #expect(throws: CryptoError.authenticationFailed) { try decrypt(larger) }
        var older = blob
        older[4] = 1
        #expect(throws: CryptoError.authenticationFailed) { try decrypt(older) }
    }

    /// Blobs written before version 2 are still read.
    @Test func versionOneBlobsAreStillRead() throws {
        let plaintext = SecureRandom.bytes(10_000)
        var encryptor = try BlobEncryptor(key: key, associatedData: documentID, chunkSize: Self.chunkSize, formatVersion: 1, arena: arena)
        var blob = encryptor.header.encoded
        plaintext.withUnsafeBytes { encryptor.append($0, to: &blob) }
        _ = encryptor.finish(to: &blob)
        #expect(blob[4] == 1)
        #expect(try decrypt(blob) == plaintext)
    }

    @Test func wrongKeyOrDocumentIsRefused() throws {
        let (blob, _) = try encrypt(SecureRandom.bytes(10))
        let otherKey = try SymmetricKey.random(in: arena)
        #expect(throws: CryptoError.self) { try decrypt(blob, key: otherKey) }
        #expect(throws: CryptoError.self) { try decrypt(blob, documentID: Array("ffffffffffffffffffffffffffffffff".utf8)) }
    }

    @Test func unknownVersionAndMagicAreRefused() throws {
        let (blob, _) = try encrypt([1, 2, 3])
        var future = blob
        future[4] = 3
        #expect(throws: CryptoError.unsupportedVersion(3)) { try decrypt(future) }
        var foreign = blob
        foreign[0] = UInt8(ascii: "X")
        #expect(throws: CryptoError.self) { try decrypt(foreign) }
    }
}
