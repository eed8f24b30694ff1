#if canImport(Glibc)
    import Glibc
#endif
import CLinux
import CoffreDomain
import CoffreCrypto
import Synchronization

/// Reads a committed blob with `pread`. The first `prefetchBytes` come with the open, so that a
/// small document is opened, authenticated and served without another trip to the I/O pool.
final class FileBlobReader: BlobReader {
    /// A header and one 64 KiB record with room to spare.
    static let prefetchBytes = 128 * 1024

    private var fd: Int32
    let size: Int64
    /// The blob's first bytes, until a read goes past them.
    private var prefix: [UInt8]
    private let io: BlockingIO

    init(fd: Int32, size: Int64, prefix: [UInt8], io: BlockingIO) {
        self.fd = fd
        self.size = size
        self.prefix = prefix
        self.io = io
    }

    func read(at offset: Int64, count: Int) async throws(StoreError) -> [UInt8] {
        if offset >= 0, offset + Int64(count) <= Int64(prefix.count) {
            return Array(prefix[Int(offset)..<Int(offset) + count])
        }
        prefix = []
        let fd = self.fd
        // What the page cache holds (a blob read or written lately, or read ahead by the
        // kernel while it is streamed) is copied on the calling thread: a trip to the I/O pool
        // for each 64 KiB record would cost more than the copy.
        if let cached = Self.preadFromCache(fd, at: offset, count: count) { return cached }
        return try await io.run { () throws(StoreError) -> [UInt8] in try Self.pread(fd, at: offset, count: count) }
    }

    /// `count` bytes at `offset` (fewer only at the end of the file) if the page cache holds
    /// them all; nil, having waited for nothing, otherwise.
    static func preadFromCache(_ fd: Int32, at offset: Int64, count: Int) -> [UInt8]? {
        guard cachedIO.load(ordering: .relaxed), count > 0 else { return nil }
        var complete = false
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { raw, initialized in
            let n = coffre_pread_cached(fd, raw.baseAddress, count, offset)
            if n < 0 && (errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP) { cachedIO.store(false, ordering: .relaxed) }
            // A short read is the end of the file only if a plain read would say so too: let
            // the pool's read decide (it loops until the count or the end).
            complete = n == count
            initialized = max(0, n)
        }
        return complete ? bytes : nil
    }

    /// Whether the kernel offers cached-only opens and reads (Linux 5.12 and later, and no
    /// seccomp filter against them); cleared at the first sign it does not.
    private static let cachedIO = Atomic<Bool>(true)

    /// Opens the blob at `path` and reads its first `prefetchBytes` on the calling thread, or
    /// returns nil, having waited for nothing, if any of it is not in the kernel's caches (or
    /// anything else went wrong: the I/O pool's open then says what).
    static func openFromCache(_ path: String) -> (fd: Int32, size: Int64, prefix: [UInt8])? {
        guard cachedIO.load(ordering: .relaxed) else { return nil }
        let fd = coffre_open_cached(path)
        guard fd >= 0 else {
            if errno == ENOSYS || errno == EINVAL || errno == EPERM { cachedIO.store(false, ordering: .relaxed) }
            return nil
        }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            Glibc.close(fd)
            return nil
        }
        let size = Int64(info.st_size)
        let count = Int(min(size, Int64(prefetchBytes)))
        guard let prefix = count == 0 ? [] : preadFromCache(fd, at: 0, count: count) else {
            Glibc.close(fd)
            return nil
        }
        return (fd, size, prefix)
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    static func pread(_ fd: Int32, at offset: Int64, count: Int) throws(StoreError) -> [UInt8] {
        var failure: Int32 = 0
        // Read straight into the array's storage: no zero-fill, no copy.
        let buffer = [UInt8](unsafeUninitializedCapacity: count) { raw, initialized in
            var total = 0
            while total < count {
                let n = Glibc.pread(fd, raw.baseAddress! + total, count - total, off_t(offset) + off_t(total))
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if n == 0 { break }
                total += n
            }
            initialized = total
        }
        if failure != 0 { throw POSIX.error("read of a blob failed", failure) }
        return buffer
    }

    /// Closing a regular file opened for reading does no I/O: done here, not on the pool.
    func close() async {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }
}
