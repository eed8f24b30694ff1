#if canImport(Glibc)
    import Glibc
#endif
import CoffreCrypto
import CoffreDomain
import Foundation

/// The anchor file: every trace checkpoint, once durable in the index, appended as one line to
/// a file outside the index. Text, so that an auditor can read it with `cat`:
///
///     coffre-trace-anchors v1 <signing public key, hex>
///     <seq> <hash, hex> <at, ms> <signature, hex>
///     …
///
/// Each line is a checkpoint signed by the vault's trace key, so the file vouches for itself:
/// a line someone else wrote does not verify. The file is only ever appended to (opened with
/// `O_APPEND`; an operator may make it append-only with `chattr +a`, or put it on another file
/// system). An index rolled back to an older copy, or whose trace was cut, no longer reaches the
/// file's last line.
enum TraceAnchorFile {
    static let magic = "coffre-trace-anchors v1"

    /// The header line naming the key every line is signed with.
    static func header(_ key: Ed25519PublicKey) -> String {
        magic + " " + Hex.encode(key.bytes) + "\n"
    }

    /// One checkpoint's line.
    static func line(_ checkpoint: TraceCheckpointRow) -> String {
        "\(checkpoint.seq) \(Hex.encode(Array(checkpoint.hash))) \(checkpoint.at) \(Hex.encode(Array(checkpoint.signature)))\n"
    }

    /// The checkpoint a line states, or nil if it is not one (a line torn by a crash while it was
    /// written is the only kind the daemon can leave).
    static func checkpoint(fromLine line: Substring) -> TraceCheckpointRow? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: false)
        guard fields.count == 4, let seq = Int64(fields[0]), let hash = Hex.decode(String(fields[1])), hash.count == 32,
            let at = Int64(fields[2]), let signature = Hex.decode(String(fields[3])), signature.count == 64
        else { return nil }
        return TraceCheckpointRow(seq: seq, hash: Data(hash), at: at, signature: Data(signature))
    }

    /// The public key a header line names, or nil if the line is not a header.
    static func key(fromHeader line: Substring) -> [UInt8]? {
        guard line.hasPrefix(magic + " ") else { return nil }
        guard let bytes = Hex.decode(String(line.dropFirst(magic.count + 1))), bytes.count == 32 else { return nil }
        return bytes
    }

    /// Reads the file a chunk at a time, line by line: memory stays bounded however long it grows
    /// (a line per 64 accesses, about 200 bytes).
    struct Reader: Sendable {
        private let fd: Int32
        private var buffer: [UInt8] = []
        private var start = 0
        private var ended = false
        /// Bytes left to read: lines appended after the reader was opened are not its.
        private var left: Int64
        /// The public key of the header, once `init` has read it.
        private(set) var key: [UInt8]? = nil

        /// Opens `path`, to read its first `length` bytes (all of it by default); nil if it does
        /// not exist.
        init?(path: String, length: Int64 = .max) throws(StoreError) {
            left = length
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else {
                if errno == ENOENT { return nil }
                throw StoreError(.io, "cannot open the trace anchor file \(path)", errno: errno)
            }
            self.fd = fd
            if let first = try nextLine() { key = TraceAnchorFile.key(fromHeader: Substring(first)) }
        }

        func close() { _ = Glibc.close(fd) }

        /// The next `count` checkpoint lines at most, read on a thread of the system's rather
        /// than on an event loop (a long file read from the disk would hold one up).
        mutating func nextPage(_ count: Int) async throws(StoreError) -> [TraceCheckpointRow] {
            let reader = self
            let (page, advanced): ([TraceCheckpointRow], Reader) = try await withCheckedContinuation { continuation in
                DispatchQueue.global(qos: .utility).async {
                    var reader = reader
                    var page: [TraceCheckpointRow] = []
                    do throws(StoreError) {
                        while page.count < count, let checkpoint = try reader.next() { page.append(checkpoint) }
                        continuation.resume(returning: Result<([TraceCheckpointRow], Reader), StoreError>.success((page, reader)))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
            }.get()
            self = advanced
            return page
        }

        /// The next checkpoint line, skipping lines that are not one (a torn line after a crash).
        /// Only complete lines count: a last line without its newline is still being written.
        mutating func next() throws(StoreError) -> TraceCheckpointRow? {
            while let line = try nextLine() {
                if let checkpoint = TraceAnchorFile.checkpoint(fromLine: Substring(line)) { return checkpoint }
            }
            return nil
        }

        private mutating func nextLine() throws(StoreError) -> String? {
            while true {
                if let newline = buffer[start...].firstIndex(of: 10) {
                    let line = String(decoding: buffer[start..<newline], as: UTF8.self)
                    start = newline + 1
                    return line
                }
                guard !ended else { return nil }
                buffer.removeFirst(start)
                start = 0
                var chunk = [UInt8](repeating: 0, count: Int(min(1 << 16, left)))
                let n = chunk.isEmpty ? 0 : chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StoreError(.io, "cannot read the trace anchor file", errno: errno)
                }
                if n == 0 {
                    ended = true
                } else {
                    buffer += chunk[0..<n]
                    left -= Int64(n)
                }
            }
        }
    }
}

extension TraceAnchorFile {
    /// The file's header key, its last checkpoint line, and whether its last line is torn (no
    /// newline: a crash while it was written), read from its end (the start reads this, not the
    /// whole file); nil if the file does not exist.
    static func tail(path: String) throws(StoreError) -> (key: [UInt8]?, last: TraceCheckpointRow?, torn: Bool)? {
        guard var reader = try Reader(path: path) else { return nil }
        defer { reader.close() }
        let key = reader.key
        var info = stat()
        guard stat(path, &info) == 0 else { throw StoreError(.io, "cannot inspect the trace anchor file", errno: errno) }
        let window = min(Int64(info.st_size), 1 << 16)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw StoreError(.io, "cannot open the trace anchor file \(path)", errno: errno) }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: Int(window))
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(Int64(info.st_size) - window)) }
        guard n == Int(window) else { throw StoreError(.io, "cannot read the trace anchor file's end", errno: errno) }
        let torn = bytes.last.map { $0 != 10 } ?? false
        // Complete lines only: the first may be cut by the window, the last by a crash.
        var lines = bytes.split(separator: 10, omittingEmptySubsequences: false).dropLast()
        if window < info.st_size { lines = lines.dropFirst() }
        if let last = lines.lazy.reversed().compactMap({ checkpoint(fromLine: Substring(String(decoding: $0, as: UTF8.self))) }).first {
            return (key, last, torn)
        }
        // Nothing usable at the end (a long torn or foreign tail): read it all.
        var last: TraceCheckpointRow? = nil
        while let checkpoint = try reader.next() { last = checkpoint }
        return (key, last, torn)
    }
}
