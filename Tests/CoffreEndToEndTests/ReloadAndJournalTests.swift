import CoffreAPI
import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// SIGHUP (`systemctl reload coffred`) and the journal's structured fields, on a real daemon.
@Suite struct ReloadAndJournalTests {
    @Test func sighupReloadsTheTrustDirectoryFileByFile() async throws {
        let notify = try NotifySocket()
        let session = try await Session(launch: DaemonLaunch(environment: ["NOTIFY_SOCKET": notify.path]))
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        // A second issuer, unknown to the daemon until the reload.
        let seedPath = session.files.path + "/other.key"
        var seed = Ed25519SigningKey.generateSeed()
        let arena = try SecureArena(slotCount: 1)
        let key = try Ed25519SigningKey(seed: seed, in: arena)
        try (Hex.encode(seed) + "\n").write(toFile: seedPath, atomically: true, encoding: .utf8)
        secureZero(&seed)
        // Each request needs its own assertion (single-use).
        func other() throws -> String { try session.assertion(seedPath: seedPath) { $0.iss = "other" } }
        let path = "/v1/patients/\(session.patient)/dossier"
        #expect(try session.raw("GET", path, assertion: other()).problemCode == "assertion_unknown_issuer")

        let trust = session.daemon.state.path + "/trust"
        try (Hex.encode(key.publicKey.bytes) + "\n").write(toFile: trust + "/other.pub", atomically: true, encoding: .utf8)
        try #"{"roles": ["patient"]}"#.write(toFile: trust + "/other.scope", atomically: true, encoding: .utf8)
        session.daemon.send(SIGHUP)
        #expect(
            await notify.waitUntil {
                $0.contains("RELOADING=1") && $0.last(where: { $0.hasPrefix("STATUS=") })?.contains("reloaded") == true
            })
        #expect(notify.lines().contains { $0.hasPrefix("MONOTONIC_USEC=") })
        #expect(try session.raw("GET", path, assertion: other()).status == 200)

        // A malformed file is left out and reported; the valid ones load.
        try "not a key\n".write(toFile: trust + "/broken.pub", atomically: true, encoding: .utf8)
        session.daemon.send(SIGHUP)
        #expect(await notify.waitUntil { $0.last(where: { $0.hasPrefix("STATUS=") })?.contains("the last reload failed") == true })
        #expect(session.daemon.log.contains("broken.pub: does not hold a 32-byte Ed25519 key in hex"))
        #expect(try session.raw("GET", path, assertion: other()).status == 200)
        #expect(try session.raw("GET", path).status == 200)

        // An issuer revoked while another file is bad is revoked all the same.
        try FileManager.default.removeItem(atPath: trust + "/other.pub")
        session.daemon.send(SIGHUP)
        #expect(
            try await eventually(every: .milliseconds(100)) {
                try session.raw("GET", path, assertion: other()).problemCode == "assertion_unknown_issuer"
            })
        #expect(session.daemon.log.contains("other.scope: no other.pub holds this issuer's key"))
        #expect(try session.raw("GET", path).status == 200)
        await session.daemon.stop()
    }

    /// Needs the journal's socket path free (no journald on this machine, as on CI): the test
    /// binds it and reads what coffred sends through `sd_journal_sendv`.
    @Test(
        .enabled(
            if: !FileManager.default.fileExists(atPath: "/run/systemd/journal/socket") && TestEnvironment.isRoot,
            "needs root and no journal running: the test puts its own at the journal's socket"))
    func underTheJournalEntriesCarryMessageIDsPriorityAndUpperCaseFields() async throws {
        let journalDirectory = "/run/systemd/journal"
        let createdDirectory = !FileManager.default.fileExists(atPath: journalDirectory)
        try FileManager.default.createDirectory(atPath: journalDirectory, withIntermediateDirectories: true)
        defer { if createdDirectory { try? FileManager.default.removeItem(atPath: journalDirectory) } }
        let journal = try NotifySocket(path: journalDirectory + "/socket")

        // systemd sets JOURNAL_STREAM to the device and inode of the stream it connects to
        // stderr; here stderr is the daemon's log file.
        let state = try TemporaryDirectory(prefix: "coffred")
        let logPath = state.path + "-daemon.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        var info = stat()
        #expect(stat(logPath, &info) == 0)
        let daemon = try await Daemon(
            state: state, launch: DaemonLaunch(environment: ["JOURNAL_STREAM": "\(info.st_dev):\(info.st_ino)"]))
        let patient = Identities.ins(7)
        #expect(try await daemon.coffre(["--as", "patient:\(patient)", "dossier", "create"]).status == 0)
        // Another patient's dossier: refused, and logged as such.
        #expect(try await daemon.coffre(["--as", "patient:\(Identities.ins(8))", "dossier", "show", "--patient", patient]).status == 77)
        // Keep reading while it stops: a datagram socket holds few messages, and a full one
        // would block the daemon's logging (as a stalled journald would).
        daemon.send(SIGTERM)
        _ = await journal.waitUntil(timeout: .seconds(60)) { $0.contains("MESSAGE=coffred stopped") }
        await daemon.waitForExit()

        let entries = journal.messages().map { Set($0.split(separator: "\n").map(String.init)) }
        func entry(_ message: String) -> Set<String>? { entries.first { $0.contains("MESSAGE=\(message)") } }
        let ready = try #require(entry("coffred ready"), "\(entries)")
        #expect(ready.contains("MESSAGE_ID=0ff9d1a9bbbe4019b086d34a57228c3c"))
        #expect(ready.contains("PRIORITY=5"))
        #expect(ready.contains("SYSLOG_IDENTIFIER=coffred"))
        #expect(ready.contains("COFFRE_SOCKET_PATH=\(daemon.socketPath)"))
        let refused = try #require(entry("request refused"))
        #expect(refused.contains("MESSAGE_ID=8474e2d158d941a3a6b80abacec0179a"))
        #expect(refused.contains("COFFRE_ERROR_CODE=access_denied"))
        #expect(refused.contains("COFFRE_HTTP_STATUS=403"))
        #expect(entry("coffred stopping: finishing requests in flight")?.contains("MESSAGE_ID=92c6649c60334d03a2eb136f3b3f9c39") == true)
        #expect(entry("coffred stopped")?.contains("MESSAGE_ID=d871ab9acdb242f1b899975f42315fe7") == true)
        #expect(entry("vault recovered")?.contains("MESSAGE_ID=0a843c9221bb4f77b07ab19375ecc8c8") == true)
        // Never the patient's identifier, in any field.
        #expect(!entries.contains { $0.contains { $0.contains(patient) } })
        // Nothing went to stderr as text: the journal had it all.
        #expect(!daemon.log.contains("coffred ready"))
    }

    @Test func withoutTheJournalTheLogIsPlainTextOnStderr() async throws {
        let daemon = try await Daemon(launch: DaemonLaunch(environment: ["JOURNAL_STREAM": "1:1"]))
        await daemon.stop()
        #expect(daemon.log.contains("coffred ready"))
        #expect(daemon.log.contains("coffred stopped"))
    }
}
