import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// Closing, reopening, opposing, legal holds, and the ten-year retention ending in a purge that
/// leaves nothing readable behind.
@Suite struct LifecycleTests {
    func retention(_ session: Session, dryRun: Bool = false) async throws -> [String: Any] {
        let run = try await session.daemon.coffre(["retention", "run", "--json"] + (dryRun ? ["--dry-run"] : []))
        #expect(run.status == 0, "\(run.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: run.stdout) as? [String: Any])
    }

    @Test func aClosedDossierIsReadOnlyKeptTenYearsThenShreddedForGood() async throws {
        let session = try await Session()
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-01"]).status == 0)
        _ = try await session.asPatient(["dossier", "create"])
        let title = "TITRE-PURGE-7d1e"
        let content = Array("CONTENU-PURGE-4b2c ".utf8) + SecureRandom.bytes(100_000)
        let id = try await session.asPatient(["doc", "put", try session.file("scan", content), "--class", "RADIO_SC", "--title", title])
            .firstLine

        // Closed: read-only, readable, reopenable.
        #expect(try await session.asPatient(["dossier", "close"]).status == 0)
        let write = try await session.asPatient(["doc", "put", try session.file("late", [1]), "--class", "AUTR_DOC"])
        #expect(write.status == 77)
        #expect(write.stderr.contains("dossier.closed-read-only"))
        #expect(try await session.asPatient(["doc", "get", id]).stdout == Data(content))
        #expect(try await session.asPatient(["dossier", "close"]).status == 65)
        #expect(try await session.asPatient(["dossier", "reopen"]).status == 0)
        #expect(try await session.asPatient(["doc", "put", try session.file("late", [1]), "--class", "AUTR_DOC"]).status == 0)
        let closed = try await session.asPatient(["dossier", "close", "--json"])
        #expect(closed.stdoutText.contains("\"purgeDate\" : \"2040-01-01T12:0"), "ten years after closure: \(closed.stdoutText)")

        // Nine years and 364 days later, nothing goes.
        let database = session.daemon.state.path + "/index.sqlite"
        let wrappedKey = try await sqlite(database, "SELECT wrapped_key FROM dossier")
        #expect(wrappedKey.count == 146)
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2039-12-31"]).status == 0)
        #expect(try await retention(session)["purged"] as? Int == 0)
        #expect(try await session.asPatient(["doc", "get", id]).status == 0)

        // Past ten years: purged; the dossier, its key and everything it held are gone.
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2040-01-02"]).status == 0)
        let dry = try await retention(session, dryRun: true)
        #expect(dry["purged"] as? Int == 1 && (dry["items"] as? [Any])?.count == 1)
        #expect(try await session.asPatient(["doc", "get", id]).status == 0, "a dry run changes nothing")
        let summary = try await retention(session)
        #expect(summary["checked"] as? Int == 1 && summary["purged"] as? Int == 1 && summary["failed"] as? Int == 0)
        #expect(try await session.asPatient(["doc", "get", id]).status == 66)
        #expect(try await session.asPatient(["dossier", "show"]).status == 66)
        #expect(session.blobFiles().committed.isEmpty)
        let key = try #require(Hex.decode(wrappedKey))
        for path in session.daemon.state.allFiles() {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            #expect(data.range(of: Data(key)) == nil, "the destroyed key's bytes are in \(path)")
            for marker in [session.patient, title, "CONTENU-PURGE"] {
                #expect(data.range(of: Data(marker.utf8)) == nil, "\(marker) found in \(path)")
            }
        }
        // The trace keeps the purge (why, and who ran it: nothing of the patient), and the runs
        // themselves (the dry one said so), and still verifies.
        let uid = getuid()
        #expect(
            try await sqlite(database, "SELECT detail FROM trace_entry WHERE action = 'dossier.purge'")
                == #"{"actorID":"uid \#(uid)","actorRole":"operator","rule":"retention-over"}"#)
        let runs = try await sqlite(database, "SELECT detail FROM trace_entry WHERE action = 'retention.run' AND dossier_id IS NULL")
        #expect(runs.contains(#""mode":"dry-run""#) && runs.contains(#""rule":"operator""#))
        #expect(try await session.daemon.coffre(["admin", "verify"]).status == 0)
    }

    @Test func holdsDeletionRequestsAndOpposition() async throws {
        let session = try await Session()
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-01"]).status == 0)
        let held = Identities.ins(51)
        let deleted = Identities.ins(52)
        let opposed = Identities.ins(53)
        let late = Identities.ins(54)
        for patient in [held, deleted, opposed, late] {
            #expect(try await session.asPatient(["dossier", "create"], patient: patient).status == 0)
        }
        // Opposition within the month destroys at once; after it, it is refused.
        #expect(try await session.asPatient(["dossier", "oppose"], patient: opposed).status == 0)
        #expect(try await session.asPatient(["dossier", "show"], patient: opposed).status == 66)
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-02-15"]).status == 0)
        let tooLate = try await session.asPatient(["dossier", "oppose"], patient: late)
        #expect(tooLate.status == 65)
        #expect(tooLate.stderr.contains("illegal_transition"))

        // A deletion request: purged three months after closure, not ten years.
        #expect(try await session.asPatient(["dossier", "close", "--delete"], patient: deleted).status == 0)
        #expect(try await session.asPatient(["dossier", "close"], patient: held).status == 0)
        #expect(
            try await session.daemon.coffre(["--patient", held, "dossier", "hold", "--reason", "procédure judiciaire 2030-17"]).status == 0)
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-05-20"]).status == 0)
        let first = try await retention(session)
        #expect(first["purged"] as? Int == 1)
        #expect(try await session.asPatient(["dossier", "show"], patient: deleted).status == 66)

        // A hold blocks the purge until it is lifted.
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2041-01-01"]).status == 0)
        let blocked = try await retention(session)
        #expect(blocked["held"] as? Int == 1 && blocked["purged"] as? Int == 0)
        #expect(try await session.asPatient(["dossier", "show", "--json"], patient: held).stdoutText.contains("\"legalHold\" : true"))
        #expect(try await session.daemon.coffre(["--patient", held, "dossier", "release"]).status == 0)
        #expect(try await retention(session)["purged"] as? Int == 1)
        #expect(try await session.asPatient(["dossier", "show"], patient: held).status == 66)
        // Lifting a hold that is not there is an illegal transition.
        #expect(try await session.daemon.coffre(["--patient", late, "dossier", "release"]).status == 65)
    }

    /// A patient with no médecin traitant: the site records the death, as an operator.
    @Test func anOperatorRecordsTheDeathOfAPatientWithNoMedecinTraitant() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        // Nobody the patient named may record it, and the patient may not.
        #expect(try await session.asPatient(["dossier", "close", "--death"]).status == 77)
        let recorded = try await session.daemon.coffre(["--patient", session.patient, "dossier", "record-death", "--json"])
        #expect(recorded.status == 0, "\(recorded.stderr)")
        let dossier = try #require(try JSONSerialization.jsonObject(with: recorded.stdout) as? [String: Any])
        #expect(dossier["state"] as? String == "closed")
        #expect(dossier["closureReason"] as? String == "death")
        #expect(dossier["deletionRequested"] as? Bool == false)
        // Closed on death: read-only, never reopened, recorded once.
        #expect(try await session.asPatient(["dossier", "reopen"]).status == 65)
        #expect(try await session.daemon.coffre(["--patient", session.patient, "dossier", "record-death"]).status == 65)
        let trace = try await session.asPatient(["trace", "--json"])
        #expect(trace.stdoutText.contains("dossier.close-on-death"), "\(trace.stdoutText)")
    }

    @Test func anInterruptedPurgeIsFinishedByTheNextRun() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let id = try await session.asPatient(["doc", "put", try session.file("d", SecureRandom.bytes(1000)), "--class", "AUTR_DOC"])
            .firstLine
        await session.daemon.stop(signal: SIGKILL)
        // As if killed right after step 1: the key destroyed, the blob and rows still there.
        let database = session.daemon.state.path + "/index.sqlite"
        _ = try await sqlite(database, "UPDATE dossier SET state = 'purging', wrapped_key = x'', sealed = x'' RETURNING id")
        try await session.daemon.start()
        #expect(FileManager.default.fileExists(atPath: session.blobPath(id)))
        #expect(try await session.asPatient(["dossier", "show"]).status == 66, "a dossier being purged is already gone")
        let summary = try await retention(session)
        #expect(summary["purged"] as? Int == 1)
        #expect(!FileManager.default.fileExists(atPath: session.blobPath(id)))
        #expect(try await sqlite(database, "SELECT count(*) FROM document") == "0")
        #expect(try await retention(session)["checked"] as? Int == 0, "idempotent: nothing left to do")
    }

    @Test(.enabled(if: TestEnvironment.canActAsAnotherUser, "needs root and setpriv to call as the job's uid"))
    func theRetentionJobsUserMayRunRetentionAndNothingElse() async throws {
        let configuration = try TemporaryDirectory(prefix: "coffre-config")
        try #"{"retentionUser": "65534"}"#.write(toFile: configuration.path + "/coffred.json", atomically: true, encoding: .utf8)
        let daemon = try await Daemon(arguments: ["--config", configuration.path + "/coffred.json"])
        chmod(daemon.state.path, 0o711)
        chmod(daemon.socketPath, 0o666)
        func asJob(_ arguments: [String]) async throws -> ProgramResult {
            try await Program.run(
                "/usr/bin/setpriv",
                [
                    "--reuid=65534", "--regid=65534", "--clear-groups", Binaries.reachableByAnyUser + "/coffre", "--socket",
                    daemon.socketPath,
                ] + arguments)
        }
        let run = try await asJob(["retention", "run", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdoutText.contains("\"checked\" : 0"))
        let admin = try await asJob(["admin", "status"])
        #expect(admin.status == 77)
        #expect(admin.stderr.contains("not_operator"))
    }

    /// 200 dossiers in `make test`; `make drills` sets COFFRE_RETENTION_DOSSIERS=10000.
    @Test func manyExpiredDossiersArePurgedInOneRun() async throws {
        let count = Int(ProcessInfo.processInfo.environment["COFFRE_RETENTION_DOSSIERS"] ?? "") ?? 200
        let session = try await Session()
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-01"]).status == 0)
        for index in 0..<count {
            let ins = Identities.ins(1000 + index)
            #expect(try session.raw("POST", "/v1/patients/\(ins)/dossier", assertion: session.assertion(patient: ins)).status == 201)
            let close = try session.raw(
                "POST", "/v1/patients/\(ins)/dossier/close", body: Data("{}".utf8), assertion: session.assertion(patient: ins))
            #expect(close.status == 200)
        }
        let keep = Identities.ins(999)
        _ = try await session.asPatient(["dossier", "create"], patient: keep)
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2041-01-01"]).status == 0)
        let started = Date()
        let summary = try await retention(session)
        print("retention: \(count) expired dossiers purged in \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
        #expect(summary["checked"] as? Int == count && summary["purged"] as? Int == count && summary["failed"] as? Int == 0)
        #expect(try await session.asPatient(["dossier", "show"], patient: keep).status == 0)
        #expect(try await session.daemon.coffre(["admin", "verify"]).status == 0)
    }
}
