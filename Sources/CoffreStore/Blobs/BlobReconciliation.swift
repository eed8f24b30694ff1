import CoffreCrypto
import CoffreDomain

/// A blob name in 24 bytes: the document id's 128 bits and the encryption's version.
///
/// Reconciling a vault after a crash compares every blob the index names with every blob on
/// disk. As strings in sets that took 500 MB and seconds at a million documents; packed and
/// sorted, a million names take 24 MB and compare by a merge. They are parsed straight from
/// SQLite's and `readdir`'s bytes, with no string in between.
public struct PackedBlobName: Hashable, Comparable, Sendable {
    /// The id's first 16 hex digits; its top byte is the shard.
    var high: UInt64
    var low: UInt64
    var version: UInt32

    /// Nil unless `id` is a well-formed document id (32 lowercase hex digits) and `version`
    /// fits, as `BlobName` requires: a row with anything else names no blob.
    init?(id: UnsafeRawBufferPointer, version: Int64) {
        guard id.count == 32, let version = UInt32(exactly: version), let (high, low) = Self.parseID(id) else { return nil }
        (self.high, self.low, self.version) = (high, low, version)
    }

    /// Parses a blob's file name, `<id>` or `<id>.<version>`, exactly as `BlobName(fileName:)`
    /// does (the version in decimal, from 1, without leading zeros); anything else is nil.
    init?(fileName: UnsafeRawBufferPointer) {
        guard fileName.count >= 32, let (high, low) = Self.parseID(UnsafeRawBufferPointer(rebasing: fileName[0..<32])) else {
            return nil
        }
        var version: UInt32 = 0
        if fileName.count > 32 {
            let digits = fileName[33...]
            guard fileName[32] == UInt8(ascii: "."), let first = digits.first, first != UInt8(ascii: "0"), digits.count <= 10 else {
                return nil
            }
            var value: UInt64 = 0
            for digit in digits {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(digit) else { return nil }
                value = value * 10 + UInt64(digit - UInt8(ascii: "0"))
            }
            guard let fitting = UInt32(exactly: value) else { return nil }
            version = fitting
        }
        (self.high, self.low, self.version) = (high, low, version)
    }

    /// The blob name again (for removing an orphan).
    var blobName: BlobName {
        let bytes = withUnsafeBytes(of: (high.bigEndian, low.bigEndian)) { Array($0) }
        return BlobName(DocumentID(unchecked: Hex.encode(bytes)), version: version)
    }

    /// The shard: the id's first byte (its first two hex digits).
    var shard: Int { Int(high >> 56) }

    public static func < (a: Self, b: Self) -> Bool {
        (a.high, a.low, a.version) < (b.high, b.low, b.version)
    }

    /// 32 lowercase hex digits as two words.
    private static func parseID(_ digits: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        guard digits.count == 32 else { return nil }
        // Two million ids at a start after a crash of a million-document vault: a table, not
        // a branch per digit.
        var words: (UInt64, UInt64) = (0, 0)
        var invalid: UInt8 = 0
        for position in 0..<16 {
            let high = hexValues[Int(digits[position])]
            let low = hexValues[Int(digits[position + 16])]
            invalid |= high | low
            words.0 = words.0 << 4 | UInt64(high & 0x0f)
            words.1 = words.1 << 4 | UInt64(low & 0x0f)
        }
        return invalid & 0xf0 == 0 ? words : nil
    }

    /// Each byte's value as a lowercase hex digit, or 0xff.
    private static let hexValues: [UInt8] = (0...255).map { byte in
        switch byte {
        case 48...57: UInt8(byte - 48)
        case 97...102: UInt8(byte - 87)
        default: 0xff
        }
    }
}

/// Compares the blobs the index names with the blobs found on disk, one shard at a time.
///
/// Pure: the caller reads the index once (`known`, in any order) and then hands over each
/// shard's listing in turn; only one shard's listing is held at once.
struct BlobReconciliation: Sendable {
    /// What the index names, sorted (so that each shard is one contiguous run).
    private let known: [PackedBlobName]
    /// Where the next shard's run starts in `known`.
    private var next = 0
    private var nextShard = 0
    /// Named by the index, not found on disk, in the shards compared so far.
    private(set) var missing = 0

    init(known: consuming [PackedBlobName]) {
        // Sorted in place: the caller's array is not copied (24 MB a million documents).
        known.sort()
        self.known = known
    }

    /// The blobs of `shard` that no index row names (orphans), given that shard's listing.
    /// Shards must come in increasing order, each once; the listing may be in any order, and
    /// names of other shards in it are ignored.
    mutating func orphans(inShard shard: Int, listed: [PackedBlobName]) -> [BlobName] {
        precondition(shard >= nextShard && shard < 256, "shards are compared in increasing order, each once")
        // Rows of shards never listed (skipped) count as missing.
        while next < known.count, known[next].shard < shard {
            missing += 1
            next += 1
        }
        let start = next
        while next < known.count, known[next].shard == shard { next += 1 }
        let expected = known[start..<next]
        nextShard = shard + 1

        // A name of another shard is not this shard's to judge: as an orphan it would be
        // removed under its own shard's path, where a document's real blob may be.
        let found = listed.filter { $0.shard == shard }.sorted()
        var orphans: [BlobName] = []
        var matched = 0
        var cursor = expected.startIndex
        for name in found {
            while cursor < expected.endIndex, expected[cursor] < name { cursor += 1 }
            if cursor < expected.endIndex, expected[cursor] == name {
                matched += 1
                cursor += 1
            } else {
                orphans.append(name.blobName)
            }
        }
        missing += expected.count - matched
        return orphans
    }

    /// Counts the rows of the shards not compared yet as missing; call after the last shard.
    mutating func finish() {
        missing += known.count - next
        next = known.count
        nextShard = 256
    }
}
