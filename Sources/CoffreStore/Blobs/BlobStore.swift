/// Where encrypted document blobs live. The index is the source of truth; a blob store only
/// keeps opaque bytes under a blob name, durably.
///
/// Implementations: `FileBlobStore` (a sharded local directory). An object store would be a
/// second implementation of this protocol, passing the same shared test suite
/// (`Tests/CoffreStoreTests/BlobStoreConformance.swift`, written against this protocol alone).
public protocol BlobStore: Sendable {
    /// Creates what the store needs and removes leftovers of interrupted writes.
    /// - Returns: the number of leftover temporary blobs removed.
    func prepare() async throws(StoreError) -> Int

    /// Starts writing a new blob; nothing is visible under `name` until `commit`.
    func makeWriter(for name: BlobName) async throws(StoreError) -> any BlobWriter

    /// Opens a committed blob for reading.
    func openReader(for name: BlobName) async throws(StoreError) -> any BlobReader

    /// Removes a committed blob; succeeds if it is already gone.
    func remove(_ name: BlobName) async throws(StoreError)

    /// When a committed blob last changed (seconds since epoch), or nil if there is none by that
    /// name: the orphan check of a running vault skips young blobs (they may be stores in flight).
    func modificationTime(of name: BlobName) async throws(StoreError) -> Int64?

    /// Every committed blob of one shard (0 to 255): the blobs whose document id starts with
    /// that byte, as two hex digits. For the reconciliation at start, when no write is in
    /// flight, so without looking at any blob's time.
    func blobNames(inShard shard: Int) async throws(StoreError) -> [PackedBlobName]
}

/// A blob being written. Used by one task at a time.
public protocol BlobWriter: AnyObject {
    /// Appends bytes.
    func write(_ bytes: [UInt8]) async throws(StoreError)
    /// Makes the blob durable and visible under its name; returns once that is on disk.
    func commit() async throws(StoreError)
    /// Discards the blob; safe to call after a failure or twice.
    func abort() async
}

/// A committed blob being read. Used by one task at a time.
public protocol BlobReader: AnyObject {
    /// The blob's size in bytes.
    var size: Int64 { get }
    /// Reads up to `count` bytes at `offset`; fewer only at the end of the blob.
    func read(at offset: Int64, count: Int) async throws(StoreError) -> [UInt8]
    /// Releases the reader's resources.
    func close() async
}
