import CSodium

/// The header in front of every blob.
///
/// Layout (34 bytes):
/// `"COFB" ‖ version (1) ‖ flags (1) = 0 ‖ chunk size (4, big-endian) ‖ secretstream header (24)`.
/// The chunk size is the plaintext size of every record but the last; each record on disk is
/// that many bytes plus `recordOverhead`.
///
/// - Version 2 (written now): the header's first ten bytes (magic, version, flags, chunk size)
///   are part of every record's associated data, so no header field can change unnoticed. (The
///   secretstream header needs no binding: any change to it fails every record.)
/// - Version 1 (read only): records bind the document id alone, so a larger chunk size written
///   into a one-record blob's header went unnoticed (found by the corruption drill).
public struct BlobHeader: Sendable, Equatable {
    /// Magic bytes that open every blob.
    public static let magic: [UInt8] = Array("COFB".utf8)
    /// The format version written.
    public static let version: UInt8 = 2
    /// The versions read.
    public static let readableVersions: ClosedRange<UInt8> = 1...2
    /// Bytes added by encryption to each record (1-byte tag + 16-byte MAC).
    public static let recordOverhead = Int(crypto_secretstream_xchacha20poly1305_ABYTES)
    static let streamHeaderBytes = Int(crypto_secretstream_xchacha20poly1305_HEADERBYTES)
    /// Length of the fields before the secretstream header.
    static let boundByteCount = magic.count + 1 + 1 + 4
    /// Length of an encoded header.
    public static let byteCount = boundByteCount + streamHeaderBytes
    /// Smallest and largest chunk sizes accepted when reading (the writer uses 64 KiB).
    public static let chunkSizeRange = 1024...(16 << 20)

    /// This blob's format version.
    public var formatVersion: UInt8
    /// Plaintext bytes per record.
    public var chunkSize: Int
    /// libsodium's secretstream header (random, public).
    public var streamHeader: [UInt8]

    /// Encoded size of one full record on disk.
    public var recordSize: Int { chunkSize + Self.recordOverhead }

    /// Serialises the header.
    public var encoded: [UInt8] {
        var out = Self.magic
        out.append(formatVersion)
        out.append(0)
        out.append(contentsOf: withUnsafeBytes(of: UInt32(chunkSize).bigEndian, Array.init))
        out.append(contentsOf: streamHeader)
        return out
    }

    init(formatVersion: UInt8, chunkSize: Int, streamHeader: [UInt8]) {
        self.formatVersion = formatVersion
        self.chunkSize = chunkSize
        self.streamHeader = streamHeader
    }

    /// What every record of this blob binds: the caller's associated data (the document id)
    /// and, from version 2, the header's fields.
    func recordAssociatedData(_ base: [UInt8]) -> [UInt8] {
        guard formatVersion >= 2 else { return base }
        return base + [0] + encoded.prefix(Self.boundByteCount)
    }

    /// Parses and validates a header.
    public init(decoding bytes: some Collection<UInt8>) throws(CryptoError) {
        let bytes = Array(bytes)
        guard bytes.count == Self.byteCount else { throw .truncated }
        guard Array(bytes[0..<4]) == Self.magic else { throw .malformed("not a Coffre blob") }
        guard Self.readableVersions.contains(bytes[4]) else { throw .unsupportedVersion(bytes[4]) }
        self.formatVersion = bytes[4]
        guard bytes[5] == 0 else { throw .malformed("unknown blob flags") }
        let size = bytes[6..<10].reduce(0) { $0 << 8 | Int($1) }
        guard Self.chunkSizeRange.contains(size) else { throw .malformed("chunk size out of range") }
        self.chunkSize = size
        self.streamHeader = Array(bytes[10...])
    }
}
