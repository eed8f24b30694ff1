import CoffreAPI
import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// Master key operations through the real client on a real daemon: rotation while stores and
/// fetches go on, a rotation killed mid-way and resumed, retirement, reload, new keys, rekey.
@Suite struct KeyRotationTests {
    /// Creates dossiers for patients 100… through the API directly (quicker than a client each).
    static func makeDossiers(_ session: Session, count: Int) throws {
        for n in 0..<count {
            let patient = Identities.ins(100 + n)
            let reply = try session.raw(
                "POST", "/v1/patients/\(patient)/dossier", headers: ["Content-Type": "application/json"], body: Data("{}".utf8),
                assertion: try session.assertion(patient: patient))
            #expect(reply.status == 201, "\(reply.status)")
        }
    }

    /// The key status, read straight off the socket (quicker than a client process, so that
    /// polls keep up with a rotation on a loaded machine).
    static func keys(_ session: Session) async throws -> MasterKeysView {
        let reply = try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: RawHTTP.request("GET", "/v1/admin/keys"))
        #expect(reply.status == 200, "\(reply.text)")
        return try JSONDecoder().decode(MasterKeysView.self, from: reply.body)
    }

    @Test func rotationRewrapsEveryKeyWhileStoresAndFetchesGoOn() async throws {
        // One key per batch with a rest between batches: the rotation lasts ten seconds or so
        // whatever the machine's load, long enough for stores and fetches to overlap it.
        let session = try await Session(arguments: ["--rotation-batch-size", "1", "--rotation-pause-ms", "250"])
        try Self.makeDossiers(session, count: 60)
        _ = try await session.asPatient(["dossier", "create"])
        var stored: [(id: String, bytes: [UInt8])] = []
        for n in 0..<3 {
            let bytes = SecureRandom.bytes(50_000 + n * 70_000)
            let put = try await session.asPatient(["doc", "put", try session.file("before-\(n)", bytes), "--class", "BIOLOGIE"])
            stored.append((put.firstLine, bytes))
        }

        let started = try await session.daemon.coffre(["admin", "keys", "rotate", "--no-wait", "--json"])
        #expect(started.status == 0, "\(started.stderr)")
        let view = try JSONDecoder().decode(MasterKeysView.self, from: started.stdout)
        #expect(view.activeVersion == 2, "development mode creates the next key when none is newer")
        #expect(view.rotation?.state == "running" && view.rotation?.total == 61)

        // Stores and fetches while the rotation runs; count those that finished before it did.
        var duringRotation = 0
        var n = 0
        while try await Self.keys(session).rotation?.state == "running" {
            let bytes = SecureRandom.bytes(20_000 + n)
            let put = try await session.asPatient(["doc", "put", try session.file("during-\(n)", bytes), "--class", "RADIO_SC"])
            #expect(put.status == 0, "\(put.stderr)")
            stored.append((put.firstLine, bytes))
            let fetched = try await session.asPatient(["doc", "get", stored[n % stored.count].id])
            #expect(fetched.status == 0 && fetched.stdout == Data(stored[n % stored.count].bytes))
            if try await Self.keys(session).rotation?.state == "running" { duringRotation += 1 }
            n += 1
        }
        #expect(duringRotation >= 1, "the rotation finished before any store overlapped it")

        let after = try await Self.keys(session)
        #expect(after.rotation?.done == 61 && after.rotation?.failed == 0)
        #expect(after.versions.map(\.dossierKeys) == [0, 61])
        #expect(after.versions.map(\.vaultKeys) == [0, 4])
        for document in stored {
            let fetched = try await session.asPatient(["doc", "get", document.id])
            #expect(fetched.stdout == Data(document.bytes))
        }
        let verify = try await session.daemon.coffre(["admin", "verify"])
        #expect(verify.status == 0, "\(verify.stdoutText)")
        #expect(session.daemon.log.contains("master key rotation finished"))
    }

    @Test func aRotationKilledMidwayResumesAfterTheRestart() async throws {
        // A second between batches: the rotation cannot finish before the kill, however slowly
        // this test gets to run on a loaded machine.
        let session = try await Session(arguments: ["--rotation-batch-size", "1", "--rotation-pause-ms", "1000"])
        try Self.makeDossiers(session, count: 30)
        _ = try await session.daemon.coffre(["admin", "keys", "rotate", "--no-wait"])
        var progress = try await Self.keys(session).rotation
        while let rotation = progress, rotation.done < 2 {
            try await Task.sleep(for: .milliseconds(20))
            progress = try await Self.keys(session).rotation
        }
        #expect(progress?.state == "running" && (progress?.done ?? 0) < 30, "killed mid-way: \(String(describing: progress))")
        await session.daemon.stop(signal: SIGKILL)

        // The restarted daemon resumes at full speed.
        session.daemon.extraArguments = []
        try await session.daemon.start()
        // The daemon resumes by itself; `rotate --json` follows it to the end.
        let waited = try await session.daemon.coffre(["admin", "keys", "status", "--json"])
        #expect(try JSONDecoder().decode(MasterKeysView.self, from: waited.stdout).activeVersion == 2)
        var finished = try await Self.keys(session)
        for _ in 0..<1200 where finished.rotation?.state == "running" {
            try await Task.sleep(for: .milliseconds(50))
            finished = try await Self.keys(session)
        }
        #expect(finished.rotation?.state == "finished")
        #expect(finished.versions.map(\.dossierKeys) == [0, 30])
        #expect((finished.rotation?.done ?? 0) >= 30)
        let verify = try await session.daemon.coffre(["admin", "verify"])
        #expect(verify.status == 0, "\(verify.stdoutText)")
        for n in [0, 15, 29] {
            let shown = try await session.daemon.coffre(["--as", "patient:\(Identities.ins(100 + n))", "dossier", "show"])
            #expect(shown.status == 0)
        }
    }

    @Test func newKeysReloadAndRetirement() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let keyDirectory = session.daemon.state.path + "/keys"

        let active = try await session.daemon.coffre(["admin", "keys", "retire", "1"])
        #expect(active.status == 65 && active.stderr.contains("key_in_use"), "\(active.stderr)")
        let unknown = try await session.daemon.coffre(["admin", "keys", "retire", "9"])
        #expect(unknown.status == 66 && unknown.stderr.contains("key_version_not_found"))

        // `keys new` picks the next version, writes 32 bytes readable by the owner only, and
        // never overwrites a key.
        let new = try await session.daemon.coffre(["admin", "keys", "new", "--dir", keyDirectory])
        #expect(new.status == 0, "\(new.stderr)")
        #expect(new.firstLine == keyDirectory + "/coffre-master-2")
        let attributes = try FileManager.default.attributesOfItem(atPath: keyDirectory + "/coffre-master-2")
        #expect(attributes[.size] as? Int == 32)
        #expect((attributes[.posixPermissions] as? Int) == 0o400)
        let again = try await session.daemon.coffre(["admin", "keys", "new", "--dir", keyDirectory, "--version", "2"])
        #expect(again.status == 73)

        // SIGHUP reads it: installed, available, not active.
        session.daemon.send(SIGHUP)
        var keys = try await Self.keys(session)
        _ = try await eventually(every: .milliseconds(50)) {
            keys = try await Self.keys(session)
            return keys.versions.count >= 2
        }
        #expect(keys.activeVersion == 1)
        #expect(keys.versions.map(\.state) == ["active", "available"])
        #expect(keys.versions.map(\.installed) == [true, true])

        // Rotate (following it to the end), then version 1 wraps nothing and can go.
        let rotated = try await session.daemon.coffre(["admin", "keys", "rotate"])
        #expect(rotated.status == 0, "\(rotated.stderr)")
        #expect(rotated.stdoutText.contains("rotation to 2: finished, 1 of 1 rewrapped"))
        let retired = try await session.daemon.coffre(["admin", "keys", "retire", "1"])
        #expect(retired.status == 0, "\(retired.stderr)")
        #expect(retired.stderr.contains("destroy coffre-master-1"))

        // A retired key left installed is not loaded after a restart, and nothing needs it.
        await session.daemon.stop()
        try await session.daemon.start()
        keys = try await Self.keys(session)
        #expect(keys.versions.map(\.state) == ["retired", "active"])
        #expect(keys.versions.map(\.installed) == [false, true])
        #expect(session.daemon.log.contains("a retired master key is still installed"))
        let shown = try await session.asPatient(["dossier", "show"])
        #expect(shown.status == 0)
    }

    @Test func aWrongOrMissingMasterKeyStopsTheStart() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let keyDirectory = session.daemon.state.path + "/keys"
        await session.daemon.stop()
        let saved = session.files.path + "/coffre-master-1"
        try FileManager.default.moveItem(atPath: keyDirectory + "/coffre-master-1", toPath: saved)
        // Another key under version 1: refused, never tried on the dossiers.
        let wrong = try await session.daemon.coffre(["admin", "keys", "new", "--dir", keyDirectory, "--version", "1"])
        #expect(wrong.status == 0)
        await #expect(throws: DaemonFailed.self) { try await session.daemon.start() }
        #expect(session.daemon.log.contains("coffre-master-1 is not the master key this vault knows as version 1"))
        // No version 1 at all (another version present): the active key is missing.
        try FileManager.default.removeItem(atPath: keyDirectory + "/coffre-master-1")
        _ = try await session.daemon.coffre(["admin", "keys", "new", "--dir", keyDirectory, "--version", "2"])
        await #expect(throws: DaemonFailed.self) { try await session.daemon.start() }
        #expect(session.daemon.log.contains("the active master key, version 1, is not installed"))
        try FileManager.default.moveItem(atPath: saved, toPath: keyDirectory + "/coffre-master-1")
        try await session.daemon.start()
        #expect(try await session.asPatient(["dossier", "show"]).status == 0)
    }

    @Test func rekeyWithAndWithoutReencryption() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let doctor = Identities.rpps(7)
        _ = try await session.asPatient(["access", "grant", doctor])
        var documents: [(id: String, bytes: [UInt8])] = []
        for size in [10, 150_000] {
            let bytes = SecureRandom.bytes(size)
            let put = try await session.asPatient(["doc", "put", try session.file("doc-\(size)", bytes), "--class", "CPT_REND"])
            documents.append((put.firstLine, bytes))
        }
        let asDoctor = ["--as", "pro:\(doctor):10", "--patient", session.patient]
        #expect(try await session.daemon.coffre(asDoctor + ["doc", "list"]).status == 0)
        let traceBefore = try await session.asPatient(["trace", "--json"]).stdout
        let notificationsBefore = try await session.asPatient(["notifications", "--include-acknowledged", "--json"]).stdout
        let blobsBefore = Set(session.blobFiles().committed)

        let plain = try await session.daemon.coffre(["--patient", session.patient, "--json", "dossier", "rekey"])
        #expect(plain.status == 0, "\(plain.stderr)")
        let first = try JSONDecoder().decode(RekeyView.self, from: plain.stdout)
        #expect(first.keyGeneration == 2 && first.documentKeysRewrapped == 2 && first.blobsReencrypted == 0)
        #expect(Set(session.blobFiles().committed) == blobsBefore)

        let full = try await session.daemon.coffre(["--patient", session.patient, "--json", "dossier", "rekey", "--reencrypt"])
        let second = try JSONDecoder().decode(RekeyView.self, from: full.stdout)
        #expect(second.keyGeneration == 3 && second.blobsReencrypted == 2)
        let blobsAfter = Set(session.blobFiles().committed)
        #expect(blobsAfter.isDisjoint(with: blobsBefore) && blobsAfter.count == 2)

        for document in documents {
            let fetched = try await session.asPatient(["doc", "get", document.id])
            #expect(fetched.stdout == Data(document.bytes))
            let byDoctor = try await session.daemon.coffre(asDoctor + ["doc", "get", document.id])
            #expect(byDoctor.stdout == Data(document.bytes))
        }
        // Entries written before the rekeys read as they did (their detail included), and the
        // rekeys themselves are traced against the dossier, naming the operator.
        func entries(_ lines: Data) throws -> [TraceEntryView] {
            try lines.split(separator: UInt8(ascii: "\n")).map { try JSONDecoder().decode(TraceEntryView.self, from: Data($0)) }
        }
        let before = try entries(traceBefore)
        let after = try entries(try await session.asPatient(["trace", "--json"]).stdout)
        #expect(before.count >= 5 && Array(after.prefix(before.count)) == before)
        #expect(after.filter { $0.action == "dossier.rekey" }.count == 2)
        #expect(before.allSatisfy { $0.actor != nil })
        let notificationsAfter = try await session.asPatient(["notifications", "--include-acknowledged", "--json"]).stdout
        #expect(notificationsAfter == notificationsBefore)
        let keys = try await Self.keys(session)
        #expect(keys.versions.first?.archivedDossierKeys == 2)
        let verify = try await session.daemon.coffre(["admin", "verify"])
        #expect(verify.status == 0, "\(verify.stdoutText)")
    }

    /// A purge destroys the live wrapped key; backups from before it keep a copy, which the
    /// master key versions of that time open. The status says which, until they are gone.
    @Test func theKeyStatusNamesTheVersionsThatOpenBackupsFromBeforeAPurge() async throws {
        let session = try await Session()
        #expect(try await Self.keys(session).purges == nil)
        #expect(try await Self.keys(session).versions.allSatisfy { !$0.predatesLastPurge })
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-01"]).status == 0)
        _ = try await session.asPatient(["dossier", "create"])
        #expect(try await session.asPatient(["dossier", "close", "--delete"]).status == 0)
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-05-20"]).status == 0)
        let run = try await session.daemon.coffre(["retention", "run", "--json"])
        #expect(run.stdoutText.contains("\"purged\" : 1"), "\(run.stdoutText)\(run.stderr)")

        let purged = try await Self.keys(session)
        #expect(purged.purges?.dossiers == 1)
        #expect(purged.purges?.lastAt.hasPrefix("2030-05-20") == true, "\(String(describing: purged.purges))")
        #expect(purged.versions.map(\.predatesLastPurge) == [true])
        let status = try await session.daemon.coffre(["admin", "keys", "status"])
        #expect(status.stdoutText.contains("last purge: 2030-05-20"), "\(status.stdoutText)")
        #expect(status.stdoutText.contains("which version(s) 1 open"), "\(status.stdoutText)")

        // A vault from before the purge record learns its purges from the trace.
        await session.daemon.stop()
        let downgrade = try await Program.run(
            "/usr/bin/env",
            [
                "python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
                session.daemon.state.path + "/index.sqlite",
                "DROP TABLE purge_record; DELETE FROM grdb_migrations WHERE identifier LIKE 'v5:%';",
            ])
        #expect(downgrade.status == 0, "\(downgrade.stderr)")
        try await session.daemon.start()
        let migrated = try await Self.keys(session)
        #expect(migrated.purges?.dossiers == 1)
        #expect(migrated.purges?.lastAt.hasPrefix("2030-05-20") == true, "\(String(describing: migrated.purges))")
        #expect(migrated.versions.map(\.predatesLastPurge) == [true])

        // A rotation moves to a version recorded after the purge; retired, version 1 still
        // opens those backups until every copy of it is destroyed.
        #expect(try await session.daemon.coffre(["admin", "keys", "rotate"]).status == 0)
        #expect(try await session.daemon.coffre(["admin", "keys", "retire", "1"]).status == 0)
        let rotated = try await Self.keys(session)
        #expect(rotated.versions.map(\.predatesLastPurge) == [true, false])
        #expect(rotated.versions.map(\.state) == ["retired", "active"])
        let after = try await session.daemon.coffre(["admin", "keys", "status"])
        #expect(after.stdoutText.contains("retired version(s) 1 open such backups too"), "\(after.stdoutText)")
        #expect(!after.stdoutText.contains("which version(s)"), "\(after.stdoutText)")
    }
}
