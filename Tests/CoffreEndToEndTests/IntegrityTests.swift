import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// Damaged blobs are refused through the real client, never served, and leave no output file.
@Suite struct IntegrityTests {
    @Test func tamperedTruncatedAndSwappedBlobsAreRefused() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        func put(_ name: String, _ size: Int) async throws -> (id: String, bytes: [UInt8]) {
            let bytes = SecureRandom.bytes(size)
            let put = try await session.asPatient(["doc", "put", try session.file(name, bytes), "--class", "BIOLOGIE"])
            #expect(put.status == 0)
            return (put.firstLine, bytes)
        }
        let flipped = try await put("flipped", 100)
        let truncated = try await put("truncated", 300_000)
        let swapped = try await put("swapped", 200)
        let intact = try await put("intact", 150_000)

        var bytes = try Data(contentsOf: URL(fileURLWithPath: session.blobPath(flipped.id)))
        bytes[bytes.count - 30] ^= 0x04
        try bytes.write(to: URL(fileURLWithPath: session.blobPath(flipped.id)))
        // Cut at a record boundary: a naive reader would see a shorter, valid-looking stream.
        let recordSize = 65_536 + BlobHeader.recordOverhead
        let whole = try Data(contentsOf: URL(fileURLWithPath: session.blobPath(truncated.id)))
        try whole.prefix(BlobHeader.byteCount + 2 * recordSize).write(to: URL(fileURLWithPath: session.blobPath(truncated.id)))
        try Data(contentsOf: URL(fileURLWithPath: session.blobPath(flipped.id))).write(
            to: URL(fileURLWithPath: session.blobPath(swapped.id)))

        for damaged in [flipped.id, truncated.id, swapped.id] {
            let output = session.files.path + "/out-\(damaged)"
            let toFile = try await session.asPatient(["doc", "get", damaged, "-o", output])
            #expect(toFile.status == 76, "\(damaged): \(toFile.stderr)")
            #expect(toFile.stderr.contains("integrity_error"))
            #expect(!FileManager.default.fileExists(atPath: output))
            let toStdout = try await session.asPatient(["doc", "get", damaged])
            #expect(toStdout.status == 76)
        }
        // The truncated one had served whole, authenticated records before failing: the client
        // received a prefix of the true content, never a wrong byte, and still refused it.
        let prefix = try await session.asPatient(["doc", "get", truncated.id])
        #expect(truncated.bytes.starts(with: prefix.stdout))
        // Nothing partial is left beside the outputs, and undamaged documents are still served.
        #expect(try FileManager.default.contentsOfDirectory(atPath: session.files.path).allSatisfy { !$0.contains("coffre-partial") })
        let good = try await session.asPatient(["doc", "get", intact.id])
        #expect(good.status == 0)
        #expect(good.stdout == Data(intact.bytes))
        #expect(session.daemon.log.contains("integrity failure") || session.daemon.log.contains("document stream stopped"))
    }
}
