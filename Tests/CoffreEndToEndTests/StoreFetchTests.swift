import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// Documents stored and fetched through the real client, the real socket and a real daemon.
@Suite struct StoreFetchTests {
    @Test func roundTripsAreByteExactFromEmptyToSeveralChunks() async throws {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        for size in [0, 1, 65_535, 65_536, 65_537, 200_003] {
            let bytes = SecureRandom.bytes(size)
            let put = try await session.asPatient([
                "doc", "put", try session.file("in-\(size)", bytes), "--class", "BIOLOGIE", "--title", "Bilan \(size)",
            ])
            #expect(put.status == 0, "\(put.stderr)")
            let id = put.firstLine
            #expect(id.count == 32)
            let output = session.files.path + "/out-\(size)"
            let get = try await session.asPatient(["doc", "get", id, "-o", output])
            #expect(get.status == 0, "\(get.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(bytes))
            let toStdout = try await session.asPatient(["doc", "get", id])
            #expect(toStdout.status == 0)
            #expect(toStdout.stdout == Data(bytes))
        }
        let list = try await session.asPatient(["doc", "list", "--json"])
        let documents = try JSONSerialization.jsonObject(with: list.stdout) as? [String: Any]
        #expect((documents?["documents"] as? [Any])?.count == 6)
        let show = try await session.asPatient(["--json", "dossier", "show"])
        #expect(show.stdoutText.contains("\"documentCount\" : 6"))
    }

    @Test func metadataIsKeptAndShown() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let path = try session.file("cr.pdf", Array("%PDF-1.7 compte rendu".utf8))
        let put = try await session.asPatient([
            "doc", "put", path, "--class", "CPT_REND", "--title", "Compte rendu d'échographie", "--type", "11502-2", "--date", "2026-10-30",
        ])
        #expect(put.status == 0, "\(put.stderr)")
        let show = try await session.asPatient(["doc", "show", put.firstLine, "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: show.stdout) as? [String: Any])
        #expect(object["class"] as? String == "CPT_REND")
        #expect(object["classCode"] as? String == "10")
        #expect(object["title"] as? String == "Compte rendu d'échographie")
        #expect(object["typeCode"] as? String == "11502-2")
        #expect(object["careDate"] as? String == "2026-10-30")
        #expect(object["mediaType"] as? String == "application/pdf")
        #expect(object["status"] as? String == "current")
        #expect(object["sha256"] as? String == Hex.encode(SHA256Hasher.hash(Array("%PDF-1.7 compte rendu".utf8))))
        let filtered = try await session.asPatient(["doc", "list", "--class", "BIOLOGIE", "--json"])
        #expect(filtered.stdoutText.contains("\"documents\" : [\n\n  ]") || !filtered.stdoutText.contains("CPT_REND"))
    }

    @Test func globalOptionsWorkBeforeAndAfterTheCommandAndFromTheEnvironment() async throws {
        let session = try await Session()
        let socket = session.daemon.socketPath
        let before = try await Program.run(
            Binaries.coffre, ["--socket", socket, "--as", "patient:\(session.patient)", "--json", "dossier", "create"])
        #expect(before.status == 0, "\(before.stderr)")
        let after = try await Program.run(
            Binaries.coffre, ["dossier", "show", "--json", "--as", "patient:\(session.patient)", "--socket", socket])
        #expect(after.status == 0)
        let environment = try await Program.run(
            Binaries.coffre, ["dossier", "show", "--as", "patient:\(session.patient)"], environment: ["COFFRE_SOCKET": socket])
        #expect(environment.status == 0)
        #expect(environment.stdoutText.contains(session.patient))
    }

    @Test func stopsAndCrashesLoseNothingAcknowledged() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        var stored: [(String, [UInt8])] = []
        for index in 0..<3 {
            let bytes = SecureRandom.bytes(70_000 + index)
            stored.append(
                (try await session.asPatient(["doc", "put", try session.file("d\(index)", bytes), "--class", "AUTR_DOC"]).firstLine, bytes))
        }
        await session.daemon.stop(signal: SIGKILL)
        try await session.daemon.start()
        await session.daemon.stop(signal: SIGTERM)
        try await session.daemon.start()
        for (id, bytes) in stored {
            let get = try await session.asPatient(["doc", "get", id])
            #expect(get.status == 0)
            #expect(get.stdout == Data(bytes))
        }
        #expect(session.blobFiles().temporary.isEmpty)
    }

    @Test func aLargeDocumentStreamsInBoundedMemory() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        // 256 MiB in `make test`; `make drills` sets COFFRE_LARGE_DOCUMENT_MIB=1024.
        let mebibytes = Int(ProcessInfo.processInfo.environment["COFFRE_LARGE_DOCUMENT_MIB"] ?? "") ?? 256
        let size = mebibytes << 20
        let path = session.files.path + "/large"
        // A sparse-free file of pseudo-random chunks, written without holding it in memory.
        let handle = try FileHandle(
            forWritingTo: URL(
                fileURLWithPath: {
                    _ = FileManager.default.createFile(atPath: path, contents: nil); return path
                }()))
        let block = SecureRandom.bytes(1 << 20)
        for index in 0..<(size >> 20) { handle.write(Data(block.map { $0 ^ UInt8(index & 0xFF) })) }
        try handle.close()
        // Warm up, then measure the daemon's peak resident memory across a store and a fetch.
        _ = try await session.asPatient(["doc", "put", try session.file("warm", SecureRandom.bytes(300_000)), "--class", "AUTR_DOC"])
        let before = try #require(session.daemon.memoryKiB("VmHWM"))
        let put = try await session.asPatient(["doc", "put", path, "--class", "RADIO_SC"])
        #expect(put.status == 0, "\(put.stderr)")
        let output = session.files.path + "/large.out"
        let get = try await session.asPatient(["doc", "get", put.firstLine, "-o", output])
        #expect(get.status == 0, "\(get.stderr)")
        let after = try #require(session.daemon.memoryKiB("VmHWM"))
        let attributes = try FileManager.default.attributesOfItem(atPath: output)
        #expect((attributes[.size] as? NSNumber)?.intValue == size)
        #expect(FileManager.default.contentsEqual(atPath: path, andPath: output))
        // A few chunks of 64 KiB, plus allocator slack: far below the 256 MiB that went through.
        print("large document: \(mebibytes) MiB stored and fetched; daemon peak memory grew by \(after - before) KiB")
        #expect(after - before < 24 * 1024, "daemon peak memory grew by \(after - before) KiB")
    }
}

/// Client details from review: `--assertion` alone says whose dossier, long traces are read to
/// the end.
@Suite struct ClientDetailsTests {
    @Test func anAssertionFileNamesTheDossierItActsOn() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let file = try session.file("assertion", Array(try session.assertion().utf8))
        let show = try await session.daemon.coffre(["--assertion", file, "dossier", "show", "--json"])
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdoutText.contains(session.patient))
    }
}
