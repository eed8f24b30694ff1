import CoffreCrypto
import CoffreDomain
@testable import CoffreStore
import CoffreTesting
import Foundation
import Logging
import NIOCore
import NIOPosix
import Testing

/// A real vault (SQLite, blob files, libsodium) in a temporary directory.
final class VaultFixture: @unchecked Sendable {
    // @unchecked: the fixture's stored properties are set in init and never mutated except
    // `vault` by `reopen`, which tests call from one task.
    let directory: TemporaryDirectory
    let pool: NIOThreadPool
    let arena: SecureArena
    private var current: Vault?
    var vault: Vault { current! }
    let maxDocumentSize: Int64

    static let patient = INS("184056312345658")!
    static let author = DocumentAuthor(role: .patient, id: patient.value, profession: nil)

    var state: String { directory.path + "/state" }
    var keys: String { directory.path + "/keys" }

    init(maxDocumentSize: Int64 = 1 << 30) async throws {
        directory = try TemporaryDirectory(prefix: "coffre-store")
        pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
        arena = try SecureArena(slotCount: 256)
        self.maxDocumentSize = maxDocumentSize
        try MasterKeyring.writeNewKey(version: 1, in: directory.path + "/keys")
        current = try await Self.open(
            state: directory.path + "/state", keys: directory.path + "/keys", pool: pool, arena: arena, max: maxDocumentSize)
    }

    static func open(state: String, keys: String, pool: NIOThreadPool, arena: SecureArena, max: Int64) async throws -> Vault {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return try await Vault.open(
            configuration: VaultConfiguration(stateDirectory: state, keyDirectories: [keys], maxDocumentSize: max, chunkSize: 4096),
            io: BlockingIO(pool: pool), arena: arena, clock: SystemClock(), logger: logger)
    }

    /// Closes the vault (releasing its state lock) and opens it again, as a restart would.
    ///
    /// The lock goes with the last copy of the old vault, and GRDB may release a closure that
    /// captured one a moment after its result came back: on a loaded machine, wait for it.
    func reopen() async throws {
        current = nil
        current = try await Self.openOnceReleased(state: state, keys: keys, pool: pool, arena: arena, max: maxDocumentSize)
    }

    /// `open`, once the last copy of a vault dropped just before on the same state directory is
    /// gone (for instance one held by the trace syncer's scheduled sync, up to its interval).
    static func openOnceReleased(state: String, keys: String, pool: NIOThreadPool, arena: SecureArena, max: Int64) async throws
        -> Vault
    {
        for attempt in 1... {
            do {
                return try await open(state: state, keys: keys, pool: pool, arena: arena, max: max)
            } catch let error as StoreError where error.message.contains("already using the state directory") && attempt < 100 {
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        fatalError("unreachable")
    }

    deinit { pool.shutdownGracefully { _ in } }

    /// Content as the server hands it over: buffers of `piece` bytes, optionally failing midway.
    static func content(_ bytes: [UInt8], piece: Int = 1000, failAfter: Int? = nil) -> AsyncThrowingStream<ByteBuffer, any Error> {
        AsyncThrowingStream { continuation in
            var offset = 0
            while offset < bytes.count {
                if let failAfter, offset >= failAfter {
                    continuation.finish(throwing: CancellationError())
                    return
                }
                let end = min(bytes.count, offset + piece)
                continuation.yield(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
            }
            continuation.finish()
        }
    }

    func store(_ bytes: [UInt8], title: String? = "Compte rendu", failAfter: Int? = nil, declared: Int64? = nil) async throws
        -> DocumentRecord
    {
        try await vault.storeDocument(
            in: Self.patient,
            NewDocument(
                documentClass: .compteRendu, title: title, typeCode: "11502-2", careDate: CareDate("2026-01-02"), author: Self.author),
            content: Self.content(bytes, failAfter: failAfter), declaredLength: declared ?? Int64(bytes.count))
    }

    func read(_ id: DocumentID) async throws -> [UInt8] {
        let content = try await vault.openContent(id, in: Self.patient)
        var out: [UInt8] = []
        while let piece = try await content.next() { out += piece }
        await content.close()
        return out
    }

    /// Committed blob files and temporary files.
    func blobFiles() -> (committed: [String], temporary: [String]) {
        let files = directory.allFiles().filter { $0.contains("/blobs/") }
        return (files.filter { !$0.contains("/blobs/tmp/") }, files.filter { $0.contains("/blobs/tmp/") })
    }
}

extension Vault {
    /// The SQLite engine under the vault, for tests that look at (or damage) its file.
    var sqlite: SQLiteIndex {
        get throws { try #require(index as? SQLiteIndex) }
    }
}
