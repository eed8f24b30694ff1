import CoffreAPI
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
        // A fetch opens the blob while its decision is traced, but a refusal wins over the
        // damage: a caller who may not read a document learns nothing of its blob's state, and a
        // deleted document is refused (rule document.deleted), whatever its blob holds.
        _ = try await session.asPatient(["dossier", "create"], patient: session.otherPatient)
        let stranger = try await session.asPatient(["doc", "get", flipped.id, "--patient", session.patient], patient: session.otherPatient)
        #expect(stranger.status == 77 && stranger.stderr.contains("access_denied"), "\(stranger.stderr)")
        #expect(try await session.asPatient(["doc", "delete", swapped.id]).status == 0)
        let deleted = try await session.asPatient(["doc", "get", swapped.id])
        #expect(deleted.status == 77 && deleted.stderr.contains("document.deleted"), "\(deleted.stderr)")
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

/// `coffre admin verify` names every damaged item: a flipped byte, a deleted blob, an orphan, a
/// corrupted wrapped key.
@Suite struct VerifyTests {
    @Test func verifyNamesEveryDamagedItem() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        var ids: [String] = []
        for index in 0..<4 {
            ids.append(
                try await session.asPatient(["doc", "put", try session.file("d\(index)", SecureRandom.bytes(5_000)), "--class", "AUTR_DOC"])
                    .firstLine)
        }
        let other = Identities.ins(61)
        _ = try await session.asPatient(["dossier", "create"], patient: other)
        _ = try await session.asPatient(["doc", "put", try session.file("o", [1, 2, 3]), "--class", "AUTR_DOC"], patient: other)
        let clean = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(clean.status == 0, "\(clean.stdoutText)")
        #expect(clean.stdoutText.contains("\"documentsChecked\" : 5"))

        // A flipped byte, a deleted blob, an orphan (old enough not to be a store in flight).
        var bytes = try Data(contentsOf: URL(fileURLWithPath: session.blobPath(ids[0])))
        bytes[bytes.count / 2] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: session.blobPath(ids[0])))
        try FileManager.default.removeItem(atPath: session.blobPath(ids[1]))
        let orphan = SecureRandom.hexIdentifier()
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: session.blobPath(orphan)))
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: session.blobPath(orphan))
        // A corrupted wrapped key: the second patient's dossier key.
        await session.daemon.stop()
        let database = session.daemon.state.path + "/index.sqlite"
        let script =
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute('SELECT id, wrapped_key FROM dossier').fetchall(); i,k=r[1]; k=bytearray(k); k[40]^=1; c.execute('UPDATE dossier SET wrapped_key=? WHERE id=?', (bytes(k), i)); c.commit(); print(i)"
        let corrupted = try await Program.run("/usr/bin/env", ["python3", "-c", script, database])
        #expect(corrupted.status == 0, "\(corrupted.stderr)")
        try await session.daemon.start()

        let report = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(report.status == 76)
        let text = report.stdoutText
        #expect(text.contains("document \(ids[0]): its blob fails verification"))
        #expect(text.contains("document \(ids[1]): its blob is missing"))
        #expect(text.contains("blob \(orphan): no index row names it"))
        #expect(
            text.contains(
                "dossier \(corrupted.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)): its key or sealed record does not open"))
        #expect(!text.contains("document \(ids[2])") && !text.contains("document \(ids[3])"), "undamaged documents are not reported")
        // A sample reads at most that many blobs (none if it falls in the dossier whose key is broken).
        let sample = try await session.daemon.coffre(["admin", "verify", "--sample", "1", "--json"])
        #expect(sample.stdoutText.contains("\"documentsChecked\" : 1") || sample.stdoutText.contains("\"documentsChecked\" : 0"))
    }
}

/// A long verification shows its progress: streamed lines for scripts, a bar on a terminal.
@Suite struct VerifyProgressTests {
    @Test func verifyStreamsProgressThenTheReport() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        for n in 0..<4 {
            let put = try await session.asPatient([
                "doc", "put", try session.file("doc-\(n)", SecureRandom.bytes(70_000)), "--class", "BIOLOGIE",
            ])
            #expect(put.status == 0)
        }
        let reply = try RawHTTP.exchange(
            socketPath: session.daemon.socketPath,
            request: RawHTTP.request("POST", "/v1/admin/verify", headers: ["Accept": "application/x-ndjson"]))
        #expect(reply.status == 200 && reply.headers["content-type"] == "application/x-ndjson")
        let lines = reply.body.split(separator: UInt8(ascii: "\n")).map { Data($0) }
        let progress = lines.dropLast().compactMap { try? JSONDecoder().decode(VerifyProgress.self, from: $0) }
        #expect(!progress.isEmpty && progress.count == lines.count - 1)
        #expect(progress.last == VerifyProgress(checked: 4, total: 4))
        let report = try JSONDecoder().decode(VerifyReport.self, from: try #require(lines.last))
        #expect(report.ok && report.documentsChecked == 4)

        // On a terminal (a pseudo-terminal made by script(1)) the client draws a bar.
        let command = "\(Binaries.coffre) --socket \(session.daemon.socketPath) admin verify"
        let terminal = try await Program.run("/usr/bin/script", ["-qfec", command, "/dev/null"])
        #expect(terminal.status == 0, "\(terminal.stdoutText)")
        #expect(terminal.stdoutText.contains("verifying [") && terminal.stdoutText.contains("4 / 4"))
        #expect(terminal.stdoutText.contains("clean"))
    }
}
