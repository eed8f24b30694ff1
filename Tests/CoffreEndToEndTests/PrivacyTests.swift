import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// No personal data in plaintext: not in the database, its WAL, the blobs, nor the daemon's log.
@Suite struct PrivacyTests {
    @Test func knownMarkersAppearNowhereInTheStateDirectoryOrTheLog() async throws {
        let session = try await Session()
        let title = "TITRE-MARQUEUR-scanner-thoracique-4c1d"
        let content = Array("CONTENU-MARQUEUR-tumeur-b7e9 ".utf8) + SecureRandom.bytes(70_000)
        _ = try await session.asPatient(["dossier", "create"])
        let put = try await session.asPatient(["doc", "put", try session.file("scan", content), "--class", "RADIO_SC", "--title", title])
        #expect(put.status == 0)
        _ = try await session.asPatient(["doc", "list"])
        _ = try await session.asPatient(["doc", "get", put.firstLine])
        _ = try await session.asPatient(["doc", "show", put.firstLine, "--patient", session.otherPatient])

        func assertClean(_ moment: String) throws {
            let files = session.daemon.state.allFiles() + [session.daemon.logPath]
            #expect(files.contains { $0.hasSuffix("index.sqlite") })
            for path in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: path))
                for marker in [session.patient, title, "CONTENU-MARQUEUR"] {
                    #expect(data.range(of: Data(marker.utf8)) == nil, "\(moment): \(marker) found in \(path)")
                }
            }
        }
        // Killed: the WAL is still there with the latest pages.
        await session.daemon.stop(signal: SIGKILL)
        #expect(session.daemon.state.allFiles().contains { $0.hasSuffix("index.sqlite-wal") })
        try assertClean("after SIGKILL")
        try await session.daemon.start()
        await session.daemon.stop(signal: SIGTERM)
        try assertClean("after a clean stop")
    }
}
