#if canImport(Glibc)
    import Glibc
#endif
import CLinux
public import CoffreDomain
import CoffreCrypto
import Synchronization

/// Blobs as files in a sharded directory, written the way restic's local backend writes them.
///
/// Layout under `root`: `tmp/` for blobs being written, and `00/` … `ff/` holding committed
/// blobs named by document id, `<id>` or `<id>.<version>` once re-encrypted (the first two hex
/// digits pick the shard). A write goes to `tmp/<id>.<random>`, is fsync'd, linked into its
/// shard (never over an existing blob), and the shard directory is fsync'd: only then is the
/// blob durable and visible. An fsync error fails the write; it is never
/// retried, because after a failed fsync the kernel may have dropped the dirty pages.
public struct FileBlobStore: BlobStore {
    /// The blob directory.
    public let root: String
    let io: BlockingIO

    public init(root: String, io: BlockingIO) {
        self.root = root
        self.io = io
    }

    var temporaryDirectory: String { root + "/tmp" }

    func shardDirectory(for name: BlobName) -> String { root + "/" + name.document.value.prefix(2) }

    /// Shard 0…255's directory, `00` … `ff`.
    func shardDirectory(_ shard: Int) -> String { root + "/" + Hex.encode([UInt8(shard)]) }

    func path(for name: BlobName) -> String { shardDirectory(for: name) + "/" + name.fileName }

    public func prepare() async throws(StoreError) -> Int {
        let root = self.root
        let temporary = temporaryDirectory
        let shards = (0..<256).map(shardDirectory)
        return try await io.run { () throws(StoreError) -> Int in
            try POSIX.makeDirectory(root)
            try POSIX.makeDirectory(temporary)
            for shard in shards { try POSIX.makeDirectory(shard) }
            var removed = 0
            for name in try POSIX.listDirectory(temporary) {
                try POSIX.unlinkIfPresent(temporary + "/" + name)
                removed += 1
            }
            try POSIX.syncDirectory(temporary)
            try POSIX.syncDirectory(root)
            return removed
        }
    }

    public func makeWriter(for name: BlobName) async throws(StoreError) -> any BlobWriter {
        let temporaryPath = temporaryDirectory + "/" + name.document.value + "." + SecureRandom.hexIdentifier(byteCount: 8)
        return FileBlobWriter(
            temporaryPath: temporaryPath, finalPath: path(for: name), shardDirectory: shardDirectory(for: name), io: io)
    }

    public func openReader(for name: BlobName) async throws(StoreError) -> any BlobReader {
        let path = self.path(for: name)
        // A blob read lately has its path and first bytes in the kernel's caches: then the open
        // and the first read need no disk, and a trip to the I/O pool and back (two thread
        // wake-ups) would cost more than they do. Anything that would wait goes to the pool.
        if let (fd, size, prefix) = FileBlobReader.openFromCache(path) {
            return FileBlobReader(fd: fd, size: size, prefix: prefix, io: io)
        }
        let (fd, size, prefix) = try await io.run { () throws(StoreError) -> (Int32, Int64, [UInt8]) in
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { throw StoreError(.integrity, "the blob of a recorded document is missing") }
                throw POSIX.error("cannot open a blob", errno)
            }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                let code = errno
                close(fd)
                throw StoreError(.io, "fstat failed on a blob", errno: code)
            }
            // The header and first record are read next anyway: read them in this job.
            let size = Int64(info.st_size)
            do throws(StoreError) {
                let prefix = try FileBlobReader.pread(fd, at: 0, count: Int(min(size, Int64(FileBlobReader.prefetchBytes))))
                return (fd, size, prefix)
            } catch {
                close(fd)
                throw error
            }
        }
        return FileBlobReader(fd: fd, size: size, prefix: prefix, io: io)
    }

    public func remove(_ name: BlobName) async throws(StoreError) {
        let path = self.path(for: name)
        let shard = shardDirectory(for: name)
        try await io.runUncancelled { () throws(StoreError) in
            try POSIX.unlinkIfPresent(path)
            try POSIX.syncDirectory(shard)
        }
    }

    public func blobNames(inShard shard: Int) async throws(StoreError) -> [PackedBlobName] {
        precondition((0..<256).contains(shard), "a shard is one byte")
        let directory = shardDirectory(shard)
        return try await io.run { () throws(StoreError) -> [PackedBlobName] in
            var names: [PackedBlobName] = []
            try POSIX.forEachEntry(of: directory) { entry, isDirectory in
                // Not a blob name, a file named for another shard (a misplaced copy), or a
                // directory: not a blob of this shard.
                if !isDirectory, let name = PackedBlobName(fileName: entry), name.shard == shard { names.append(name) }
            }
            return names
        }
    }

    public func modificationTime(of name: BlobName) async throws(StoreError) -> Int64? {
        let path = self.path(for: name)
        return try await io.run { () throws(StoreError) -> Int64? in
            var info = stat()
            guard stat(path, &info) == 0 else {
                if errno == ENOENT { return nil }
                throw POSIX.error("cannot read a blob's time", errno)
            }
            return Int64(info.st_mtim.tv_sec)
        }
    }
}

/// Writes one blob to its temporary file, then commits it into place.
///
/// The file is opened only when a second batch arrives, or at the commit: a small document
/// (one batch) is then created, written, synced and linked in one job on the I/O pool instead
/// of three, each a round trip between threads that cost more than the writing itself.
///
/// Once the file is open, each batch is written in the background while the caller encrypts
/// the next one: `write` returns once the previous batch is written and this one started (one
/// batch in flight, so memory stays bounded). A failed write is thrown by the next `write` or by
/// `commit`.
final class FileBlobWriter: BlobWriter {
    private enum State {
        /// Nothing written yet, or one batch held back.
        case unopened(pending: [UInt8]?)
        case open(Int32)
        /// Committed or aborted.
        case done
    }

    private var state: State = .unopened(pending: nil)
    /// The batch being written, if any.
    private var inFlight: PendingIO?
    /// Bytes handed to the file so far (the offset of the next batch).
    private var written: Int64 = 0
    private let temporaryPath: String
    private let finalPath: String
    private let shardDirectory: String
    private let io: BlockingIO

    init(temporaryPath: String, finalPath: String, shardDirectory: String, io: BlockingIO) {
        self.temporaryPath = temporaryPath
        self.finalPath = finalPath
        self.shardDirectory = shardDirectory
        self.io = io
    }

    func write(_ bytes: [UInt8]) async throws(StoreError) {
        switch state {
        case .unopened(pending: nil):
            state = .unopened(pending: bytes)
        case .unopened(pending: let pending?):
            let temporary = temporaryPath
            let fd = try await io.run { () throws(StoreError) -> Int32 in
                let fd = try Self.create(temporary)
                do throws(StoreError) {
                    try POSIX.writeAll(fd, pending)
                    try POSIX.writeAll(fd, bytes)
                } catch {
                    close(fd)
                    unlink(temporary)
                    throw error
                }
                _ = coffre_start_writeback(fd, 0, Int64(pending.count + bytes.count))
                return fd
            }
            written = Int64(pending.count + bytes.count)
            state = .open(fd)
        case .open(let fd):
            try await finishWriting()
            let offset = written
            written += Int64(bytes.count)
            // The disk starts on each batch while the next is encrypted, instead of all of a
            // large document waiting for the commit's fsync (which the limit pays whole).
            inFlight = io.start { () throws(StoreError) in
                try POSIX.writeAll(fd, bytes)
                _ = coffre_start_writeback(fd, offset, Int64(bytes.count))
            }
        case .done:
            preconditionFailure("write after commit or abort")
        }
    }

    /// Waits for the batch in flight; throws if its write failed.
    private func finishWriting() async throws(StoreError) {
        guard let batch = inFlight else { return }
        inFlight = nil
        try await batch.wait()
    }

    func commit() async throws(StoreError) {
        // A failed batch leaves the file open: the caller's `abort` closes and removes it.
        try await finishWriting()
        let (temporary, final, shard) = (temporaryPath, finalPath, shardDirectory)
        let opened: Int32?
        let pending: [UInt8]?
        switch state {
        case .unopened(let held): (opened, pending) = (nil, held)
        case .open(let fd): (opened, pending) = (fd, nil)
        case .done: preconditionFailure("commit after commit or abort")
        }
        // The descriptor is closed inside, whatever happens: never close it twice.
        state = .done
        try await io.runUncancelled { () throws(StoreError) in
            let fd: Int32
            if let opened {
                fd = opened
            } else {
                fd = try Self.create(temporary)
                do throws(StoreError) {
                    if let pending { try POSIX.writeAll(fd, pending) }
                } catch {
                    close(fd)
                    unlink(temporary)
                    throw error
                }
            }
            guard fsync(fd) == 0 else {
                let code = errno
                close(fd)
                unlink(temporary)
                throw POSIX.error("fsync of a new blob failed", code)
            }
            guard close(fd) == 0 else {
                let code = errno
                unlink(temporary)
                throw POSIX.error("close of a new blob failed", code)
            }
            // link + unlink rather than rename: a blob already under that name is never
            // replaced (two rekeys racing to the same new name fail instead of clobbering).
            guard link(temporary, final) == 0 else {
                let code = errno
                unlink(temporary)
                if code == EEXIST { throw StoreError(.conflict, "a blob with this name exists already; nothing was replaced") }
                throw POSIX.error("moving a new blob into place failed", code)
            }
            unlink(temporary)
            do throws(StoreError) {
                try POSIX.syncDirectory(shard)
            } catch {
                // Not durable, so not acknowledged: take the blob back out rather than leave
                // a file no index row will ever name.
                unlink(final)
                throw error
            }
        }
    }

    func abort() async {
        try? await finishWriting()
        let temporary = temporaryPath
        guard case .open(let fd) = state else {
            state = .done
            return
        }
        state = .done
        _ = try? await io.runUncancelled { () throws(StoreError) in
            close(fd)
            try POSIX.unlinkIfPresent(temporary)
        }
    }

    private static func create(_ path: String) throws(StoreError) -> Int32 {
        try POSIX.open(path, flags: O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode: 0o600)
    }

    deinit {
        // A writer dropped without commit or abort (a cancelled task) must not leak its
        // descriptor or leave its temporary file; the start-up sweep is the last resort.
        if case .open(let fd) = state {
            let temporary = temporaryPath
            let cleanUp: @Sendable () -> Void = {
                close(fd)
                unlink(temporary)
            }
            // Never close a descriptor a batch is still being written to.
            if let inFlight { inFlight.whenFinished(cleanUp) } else { cleanUp() }
        }
    }
}
