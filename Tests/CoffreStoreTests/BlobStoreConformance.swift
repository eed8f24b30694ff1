import CoffreCrypto
import CoffreDomain
import CoffreTesting
import Foundation
import NIOPosix
import Testing

@testable import CoffreStore

/// A fresh, empty store of one engine, kept alive with whatever it needs.
struct BlobStoreEngine: Sendable, CustomTestStringConvertible {
    var name: String
    var make: @Sendable () async throws -> (store: any BlobStore, keepAlive: any Sendable)
    var testDescription: String { name }
}

/// Owns a temporary directory and an I/O pool for the life of one test.
final class FileEngineResources: Sendable {
    let directory: TemporaryDirectory
    let pool: NIOThreadPool
    init() throws {
        directory = try TemporaryDirectory(prefix: "coffre-blobs")
        pool = NIOThreadPool(numberOfThreads: 2)
        pool.start()
    }
    deinit { try? pool.syncShutdownGracefully() }
}

/// What every `BlobStore` must do, written against the protocol alone: a second engine (an
/// object store) runs these same checks by adding itself to `engines`.
@Suite struct BlobStoreConformance {
    static let engines: [BlobStoreEngine] = [
        BlobStoreEngine(name: "files") {
            let resources = try FileEngineResources()
            let store = FileBlobStore(root: resources.directory.path + "/blobs", io: BlockingIO(pool: resources.pool))
            _ = try await store.prepare()
            return (store, resources)
        }
    ]

    static func name(shard: UInt8, _ n: Int, version: UInt32 = 0) -> BlobName {
        BlobName(DocumentID(unchecked: Hex.encode([shard]) + String(format: "%030x", n)), version: version)
    }

    static func write(_ bytes: [UInt8], as name: BlobName, in store: any BlobStore, chunk: Int = 7_000) async throws {
        let writer = try await store.makeWriter(for: name)
        var offset = 0
        repeat {
            let end = min(offset + chunk, bytes.count)
            try await writer.write(Array(bytes[offset..<end]))
            offset = end
        } while offset < bytes.count
        try await writer.commit()
    }

    static func readAll(_ name: BlobName, from store: any BlobStore) async throws -> [UInt8] {
        let reader = try await store.openReader(for: name)
        var bytes: [UInt8] = []
        do {
            while Int64(bytes.count) < reader.size {
                let part = try await reader.read(at: Int64(bytes.count), count: 50_000)
                if part.isEmpty { break }
                bytes += part
            }
        } catch {
            await reader.close()
            throw error
        }
        await reader.close()
        return bytes
    }

    @Test(arguments: engines)
    func aCommittedBlobReadsBackExactlyAtAnyOffset(_ engine: BlobStoreEngine) async throws {
        let (store, keepAlive) = try await engine.make()
        for (n, size) in [0, 1, 65_537, 1 << 20].enumerated() {
            let bytes = SecureRandom.bytes(size)
            let name = Self.name(shard: 0x3c, n)
            try await Self.write(bytes, as: name, in: store)
            #expect(try await Self.readAll(name, from: store) == bytes, "\(size) bytes")
            let reader = try await store.openReader(for: name)
            #expect(reader.size == Int64(size))
            if size > 10 {
                #expect(try await reader.read(at: 5, count: 3) == Array(bytes[5..<8]))
                #expect(try await reader.read(at: Int64(size - 2), count: 10) == Array(bytes[(size - 2)...]), "short at the end")
            }
            await reader.close()
        }
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func nothingIsVisibleBeforeCommitNorAfterAbort(_ engine: BlobStoreEngine) async throws {
        let (store, keepAlive) = try await engine.make()
        let name = Self.name(shard: 0x01, 1)
        let writer = try await store.makeWriter(for: name)
        try await writer.write(SecureRandom.bytes(1_000))
        await #expect(throws: StoreError.self) { _ = try await store.openReader(for: name) }
        #expect(try await store.blobNames(inShard: 0x01).isEmpty)
        #expect(try await store.modificationTime(of: name) == nil)
        await writer.abort()
        await writer.abort()
        await #expect(throws: StoreError.self) { _ = try await store.openReader(for: name) }
        #expect(try await store.blobNames(inShard: 0x01).isEmpty)
        // A writer left neither committed nor aborted (a crash) is cleared by the next prepare,
        // which counts what it removed (an engine may hold nothing before the commit).
        let leftName = Self.name(shard: 0x01, 2)
        let left = try await store.makeWriter(for: leftName)
        for _ in 0..<3 { try await left.write(SecureRandom.bytes(10_000)) }
        #expect((0...1).contains(try await store.prepare()))
        #expect(try await store.prepare() == 0)
        #expect(try await store.blobNames(inShard: 0x01).isEmpty)
        await #expect(throws: StoreError.self) { _ = try await store.openReader(for: leftName) }
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func aCommittedNameIsNeverReplaced(_ engine: BlobStoreEngine) async throws {
        let (store, keepAlive) = try await engine.make()
        let name = Self.name(shard: 0x02, 1)
        try await Self.write([1, 2, 3], as: name, in: store)
        let second = try await store.makeWriter(for: name)
        try await second.write([9, 9, 9])
        let refused = await #expect(throws: StoreError.self) { try await second.commit() }
        #expect(refused?.code == .conflict)
        await second.abort()
        #expect(try await Self.readAll(name, from: store) == [1, 2, 3])
        withExtendedLifetime(keepAlive) {}
    }

    @Test(arguments: engines)
    func shardsListExactlyTheirCommittedBlobsAndRemovalIsIdempotent(_ engine: BlobStoreEngine) async throws {
        let (store, keepAlive) = try await engine.make()
        let inShard = [Self.name(shard: 0xa0, 1), Self.name(shard: 0xa0, 2), Self.name(shard: 0xa0, 2, version: 3)]
        let elsewhere = Self.name(shard: 0xa1, 1)
        for name in inShard + [elsewhere] { try await Self.write([7], as: name, in: store) }
        #expect(Set(try await store.blobNames(inShard: 0xa0).map(\.blobName)) == Set(inShard))
        #expect(try await store.blobNames(inShard: 0xa1).map(\.blobName) == [elsewhere])
        #expect(try await store.blobNames(inShard: 0xff).isEmpty)
        let time = try #require(try await store.modificationTime(of: inShard[0]))
        #expect(abs(time - Int64(Date().timeIntervalSince1970)) < 600)
        try await store.remove(inShard[1])
        try await store.remove(inShard[1])
        #expect(Set(try await store.blobNames(inShard: 0xa0).map(\.blobName)) == [inShard[0], inShard[2]])
        #expect(try await Self.readAll(inShard[2], from: store) == [7], "a re-encryption's name is a blob of its own")
        await #expect(throws: StoreError.self) { _ = try await store.openReader(for: inShard[1]) }
        withExtendedLifetime(keepAlive) {}
    }
}
