import CoffreTesting
import Foundation
import Testing

/// Someone who can write the index but holds no master key puts back an older copy of one row,
/// as an outside review did: a dossier's settings (a revoked authorisation brought back) or a
/// document's row (a mask undone). The daemon refuses to serve the dossier, while it runs and
/// after a restart, traces each refusal, and `verify` names the dossier.
@Suite struct RowRollbackTests {
    let doctor = Identities.rpps(11)

    func doctor(_ session: Session, _ arguments: [String]) async throws -> ProgramResult {
        try await session.asProfessional("\(doctor):10", arguments)
    }

    /// A dossier with a lab result the doctor is authorised to read.
    func dossierReadByTheDoctor(_ session: Session) async throws -> String {
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let lab = try await session.asPatient(["doc", "put", try session.file("lab", Array("HbA1c 6,1 %".utf8)), "--class", "BIOLOGIE"])
            .firstLine
        #expect(try await session.asPatient(["access", "grant", doctor]).status == 0)
        #expect(try await self.doctor(session, ["doc", "get", lab]).stdout == Data("HbA1c 6,1 %".utf8))
        return lab
    }

    func database(_ session: Session) -> String { session.daemon.state.path + "/index.sqlite" }

    /// A copy of the rows of `table` that `condition` selects, every column, as a Python literal
    /// (bytes kept as bytes) to put back later.
    func copy(_ session: Session, _ table: String, where condition: String) async throws -> String {
        let result = try await Program.run(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(repr(c.execute(sys.argv[2]).fetchall()))",
                database(session), "SELECT * FROM \(table) WHERE \(condition)",
            ])
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes rows copied earlier back over the current ones (`columns` of them, or all).
    func putBack(_ session: Session, _ table: String, _ rows: String, columns: [String]? = nil) async throws {
        let script = """
            import sqlite3,sys
            c=sqlite3.connect(sys.argv[1])
            names=[d[1] for d in c.execute("PRAGMA table_info(\(table))").fetchall()]
            keep=\(columns.map { "[" + $0.map { "'\($0)'" }.joined(separator: ",") + "]" } ?? "names")
            c.execute("DROP TRIGGER IF EXISTS dossier_revision_on_change")
            for row in \(rows):
                values=dict(zip(names,row))
                c.execute("UPDATE \(table) SET " + ",".join(k+"=?" for k in keep) + " WHERE id=?", [values[k] for k in keep]+[values["id"]])
            c.commit()
            """
        let result = try await Program.run("/usr/bin/env", ["python3", "-c", script, database(session)])
        #expect(result.status == 0, "\(result.stderr)")
    }

    func refusedAsDamaged(_ result: ProgramResult) -> Bool {
        result.status == 76 && result.stderr.contains("integrity_error")
    }

    @Test func aSettingsRowPutBackIsRefused() async throws {
        let session = try await Session()
        let lab = try await dossierReadByTheDoctor(session)
        let before = try await copy(session, "dossier", where: "1")
        #expect(try await session.asPatient(["access", "revoke", doctor]).status == 0)
        #expect(try await doctor(session, ["doc", "get", lab]).status == 77)

        // The sealed settings alone, while the daemon runs: the row no longer matches its seal.
        try await putBack(session, "dossier", before, columns: ["sealed"])
        #expect(refusedAsDamaged(try await doctor(session, ["doc", "get", lab])))
        #expect(refusedAsDamaged(try await session.asPatient(["access", "list"])))
        #expect(session.daemon.log.contains("its row does not match its seal"))

        // The whole row, its seal with it: it is older than the dossier's trace says.
        try await putBack(session, "dossier", before)
        #expect(refusedAsDamaged(try await doctor(session, ["doc", "get", lab])))
        #expect(session.daemon.log.contains("its trace records generation"))
        await session.daemon.stop()
        try await session.daemon.start()
        #expect(refusedAsDamaged(try await doctor(session, ["doc", "get", lab])))

        let report = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(report.status == 76)
        #expect(report.stdoutText.contains("its trace records generation"), "\(report.stdoutText)")
        // The refusals are in the trace, counted as failures with their error code (and nothing
        // of the dossier, whose rows are not to be trusted); the last count at the stop.
        await session.daemon.stop()
        let failures = try await sqlite(
            database(session),
            "SELECT sum(json_extract(detail, '$.count')) FROM trace_entry WHERE outcome = 'failed' AND detail LIKE '%integrity_error%'")
        #expect((Int(failures) ?? 0) >= 4, "\(failures)")
    }

    @Test func aDocumentRowPutBackIsRefused() async throws {
        let session = try await Session()
        let lab = try await dossierReadByTheDoctor(session)
        let report = try await session.asPatient(["doc", "put", try session.file("cr", Array("compte rendu".utf8)), "--class", "CPT_REND"])
            .firstLine
        let unmasked = try await copy(session, "document", where: "id = '\(lab)'")
        #expect(try await session.asPatient(["doc", "mask", lab]).status == 0)
        #expect(try await doctor(session, ["doc", "get", lab]).status == 77)
        let masked = try await copy(session, "document", where: "id = '\(lab)'")

        // The unmasked row put back while the daemon runs: older than the version the seal counts.
        try await putBack(session, "document", unmasked)
        #expect(refusedAsDamaged(try await doctor(session, ["doc", "get", lab])))
        #expect(refusedAsDamaged(try await session.asPatient(["doc", "list"])))
        #expect(session.daemon.log.contains("the row was put back from an older copy"))

        // After a restart, the dossier's rows no longer add up to its seal.
        await session.daemon.stop()
        try await session.daemon.start()
        #expect(refusedAsDamaged(try await doctor(session, ["doc", "get", lab])))
        #expect(refusedAsDamaged(try await doctor(session, ["doc", "get", report])))
        let verify = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(verify.status == 76)
        #expect(verify.stdoutText.contains("do not match the 2 its seal counts"), "\(verify.stdoutText)")

        // The current row back in place: the dossier is served again, the document masked.
        try await putBack(session, "document", masked)
        #expect(try await doctor(session, ["doc", "get", lab]).status == 77)
        #expect(try await doctor(session, ["doc", "get", report]).stdout == Data("compte rendu".utf8))
        #expect(try await session.daemon.coffre(["admin", "verify", "--json"]).status == 0)
    }
}
