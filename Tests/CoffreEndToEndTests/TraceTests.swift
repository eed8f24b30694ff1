import CoffreTesting
import Foundation
import Testing

/// Every access is traced, denials too; the patient and the médecin traitant read the trace;
/// `admin verify` proves the chain and names the first broken entry.
@Suite struct TraceTests {
    let doctor = Identities.rpps(21)
    let attending = Identities.rpps(22)

    func entries(_ result: ProgramResult) throws -> [[String: Any]] {
        try result.stdoutText.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test func everyAccessIsTracedAndTheChainVerifies() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let id = try await session.asPatient(["doc", "put", try session.file("lab", [1, 2, 3]), "--class", "BIOLOGIE"]).firstLine
        let pro = ["--as", "pro:\(doctor):10", "--patient", session.patient]
        #expect(try await session.daemon.coffre(pro + ["doc", "list"]).status == 77)
        _ = try await session.asPatient(["access", "grant", doctor])
        #expect(try await session.daemon.coffre(pro + ["doc", "get", id]).status == 0)
        let urgent = ["--as", "pro:\(Identities.rpps(23)):10", "--patient", session.patient, "--mode", "bris_de_glace", "--reason", "coma"]
        #expect(try await session.daemon.coffre(urgent + ["doc", "list"]).status == 0)

        let trace = try await session.asPatient(["trace", "--json"])
        #expect(trace.status == 0, "\(trace.stderr)")
        let all = try entries(trace)
        let summary = all.map { "\($0["action"] ?? "")/\($0["outcome"] ?? "")" }
        #expect(
            summary.starts(with: [
                "dossier.create/allowed", "document.add/allowed", "document.list/denied", "dossier.manage/allowed",
                "document.content/allowed",
            ]))
        let denied = try #require(all.first { $0["outcome"] as? String == "denied" })
        #expect((denied["actor"] as? [String: Any])?["id"] as? String == doctor)
        #expect(denied["rule"] as? String == "professional.not-authorized")
        let read = try #require(all.first { $0["action"] as? String == "document.content" })
        #expect(read["documentId"] as? String == id)
        #expect(read["matrixVersion"] as? String == "coffre-default-2026.11")
        let emergency = try #require(all.first { $0["mode"] as? String == "bris_de_glace" })
        #expect(emergency["reason"] as? String == "coma")

        // The médecin traitant reads the trace; another professional may not.
        _ = try await session.asPatient(["dossier", "set-doctor", attending])
        #expect(try await session.daemon.coffre(["--as", "pro:\(attending):10", "--patient", session.patient, "trace"]).status == 0)
        #expect(try await session.daemon.coffre(pro + ["trace"]).status == 77)

        let verify = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(verify.status == 0, "\(verify.stdoutText)")
        #expect(verify.stdoutText.contains("\"ok\" : true"))
    }

    /// A read's entry is made durable by batch, but written before the content is sent: a crash
    /// of the daemon right after the answers loses none of them. (A power cut could lose the
    /// last interval's worth; the longest interval makes sure no sync ran before the kill.)
    @Test func readsAnsweredJustBeforeACrashAreInTheTraceAfterIt() async throws {
        let session = try await Session(arguments: ["--trace-sync-ms", "1000"])
        _ = try await session.asPatient(["dossier", "create"])
        let id = try await session.asPatient(["doc", "put", try session.file("lab", [1, 2, 3]), "--class", "BIOLOGIE"]).firstLine
        for _ in 0..<3 { #expect(try await session.asPatient(["doc", "get", id]).status == 0) }
        #expect(try await session.daemon.coffre(["--as", "pro:\(doctor):10", "--patient", session.patient, "doc", "get", id]).status == 77)
        await session.daemon.stop(signal: SIGKILL)
        try await session.daemon.start()
        let summary = try entries(try await session.asPatient(["trace", "--json"])).map { "\($0["action"] ?? "")/\($0["outcome"] ?? "")" }
        #expect(
            summary.starts(with: [
                "dossier.create/allowed", "document.add/allowed", "document.content/allowed", "document.content/allowed",
                "document.content/allowed", "document.content/denied",
            ]), "\(summary)")
        let verify = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(verify.status == 0, "\(verify.stdoutText)")
    }

    @Test func aRewrittenOrRemovedEntryIsNamedByVerify() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        for index in 0..<5 {
            _ = try await session.asPatient(["doc", "put", try session.file("d\(index)", [UInt8(index)]), "--class", "AUTR_DOC"])
        }
        // A clean stop signs a checkpoint at the end of the chain.
        await session.daemon.stop()
        let database = session.daemon.state.path + "/index.sqlite"
        // Someone with the database rewrites what entry 4 says happened.
        let sql = "UPDATE trace_entry SET action = 'document.list' WHERE seq = 4;"
        let edit = try await Program.run(
            "/usr/bin/env",
            [
                "python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", database,
                sql,
            ])
        #expect(edit.status == 0, "\(edit.stderr)")
        try await session.daemon.start()
        let verify = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(verify.status == 76)
        #expect(verify.stdoutText.contains("\"firstBrokenTraceEntry\" : 4"))

        // Removing an entry breaks the chain too.
        await session.daemon.stop()
        let remove = try await Program.run(
            "/usr/bin/env",
            [
                "python3", "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('DELETE FROM trace_entry WHERE seq = 2'); c.commit()",
                database,
            ])
        #expect(remove.status == 0)
        try await session.daemon.start()
        let again = try await session.daemon.coffre(["admin", "verify"])
        #expect(again.status == 76)
        #expect(again.stdoutText.contains("first broken entry  2"))
    }
}
