import CoffreTesting
import Foundation
import Testing

/// Someone who can write the index but holds no master key attacks the trace with the daemon
/// stopped, as an outside review did: each attack is named by the next start or by `verify`.
@Suite struct TraceAnchorTests {
    /// A daemon whose trace holds more than `entries` entries, stopped cleanly (its end
    /// checkpointed and anchored).
    static func tracedSession(entries: Int = 150) async throws -> Session {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        for _ in 0..<entries {
            #expect(try session.raw("GET", "/v1/patients/\(session.patient)/dossier").status == 200)
        }
        await session.daemon.stop()
        return session
    }

    /// Runs a Python script on the stopped daemon's index (`sys.argv[1]`), as the attacker would.
    static func edit(_ session: Session, _ script: String) async throws {
        let result = try await Program.run(
            "/usr/bin/env",
            [
                "python3", "-c", "import sqlite3,sys,hashlib\nc=sqlite3.connect(sys.argv[1])\n" + script + "\nc.commit()",
                session.daemon.state.path + "/index.sqlite",
            ])
        #expect(result.status == 0, "\(result.stderr)")
    }

    static func startIsRefused(_ session: Session, saying words: String) async {
        await #expect(throws: DaemonFailed.self) { try await session.daemon.start() }
        #expect(session.daemon.log.contains(words), "\(session.daemon.log)")
    }

    static let notReached = "the index's trace does not reach its last anchor"

    /// The review's attack: entry 100 rewritten (an allowed read becomes an anonymous refusal),
    /// the plain SHA-256 chain recomputed from there, the checkpoints from there deleted.
    @Test func anEntryRewrittenWithTheChainRecomputedAndItsCheckpointsDeleted() async throws {
        let session = try await Self.tracedSession()
        try await Self.edit(
            session,
            """
            def chained(r):
                out = b"coffre/trace/v1" + r[0].to_bytes(8, "big", signed=True) + r[1].to_bytes(8, "big", signed=True)
                for f in (r[2], r[3], r[4], r[5], r[6]):
                    if f is None: out += b"\\xff\\xff\\xff\\xff"; continue
                    b = f.encode() if isinstance(f, str) else f
                    out += len(b).to_bytes(4, "big") + b
                return out
            c.execute("UPDATE trace_entry SET dossier_id = NULL, action = 'GET /v1/nothing', outcome = 'refused', sealed = NULL, detail = '{}' WHERE seq = 100")
            prev = c.execute("SELECT hash FROM trace_entry WHERE seq = 99").fetchone()[0]
            for r in c.execute("SELECT seq, at, dossier_id, action, outcome, detail, sealed FROM trace_entry WHERE seq >= 100 ORDER BY seq").fetchall():
                prev = hashlib.sha256(prev + chained(r)).digest()
                c.execute("UPDATE trace_entry SET hash = ? WHERE seq = ?", (prev, r[0]))
            c.execute("DELETE FROM trace_checkpoint WHERE seq >= 100")
            """)
        await Self.startIsRefused(session, saying: Self.notReached)
    }

    @Test func theTailCut() async throws {
        let session = try await Self.tracedSession()
        try await Self.edit(
            session, "c.execute('DELETE FROM trace_entry WHERE seq > 130'); c.execute('DELETE FROM trace_checkpoint WHERE seq > 130')")
        await Self.startIsRefused(session, saying: Self.notReached + " (entry 151")
        #expect(session.daemon.log.contains("the index ends at entry 130"))
    }

    @Test func theWholeIndexRolledBackToAnOlderCopy() async throws {
        let session = try await Self.tracedSession(entries: 70)
        let state = session.daemon.state.path
        let copy = session.files.path + "/older"
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        let files = ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"].filter {
            FileManager.default.fileExists(atPath: state + "/" + $0)
        }
        for file in files { try FileManager.default.copyItem(atPath: state + "/" + file, toPath: copy + "/" + file) }
        // More accesses, then the older copy put back: every hash and signature in it is genuine.
        try await session.daemon.start()
        for _ in 0..<70 { #expect(try session.raw("GET", "/v1/patients/\(session.patient)/dossier").status == 200) }
        await session.daemon.stop()
        for file in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
            try? FileManager.default.removeItem(atPath: state + "/" + file)
        }
        for file in files { try FileManager.default.copyItem(atPath: copy + "/" + file, toPath: state + "/" + file) }
        await Self.startIsRefused(session, saying: Self.notReached)
    }

    /// Checkpoints alone removed: the start's check of the last anchor still holds, `verify`
    /// names each missing one.
    @Test func checkpointsDeleted() async throws {
        let session = try await Self.tracedSession()
        try await Self.edit(session, "c.execute('DELETE FROM trace_checkpoint WHERE seq IN (64, 128)')")
        try await session.daemon.start()
        let verify = try await session.daemon.coffre(["admin", "verify"])
        #expect(verify.status == 76)
        #expect(verify.stdoutText.contains("the checkpoint due at entry 64 is missing (removed)"), "\(verify.stdoutText)")
        #expect(verify.stdoutText.contains("the checkpoint due at entry 128 is missing (removed)"))
        #expect(verify.stdoutText.contains("first broken entry  64"))
    }

    /// Every anchor is in the journal too, and the file shows who signed it.
    @Test func theAnchorsAreOutsideTheIndex() async throws {
        let session = try await Self.tracedSession()
        let lines = try String(contentsOfFile: session.daemon.state.path + "/trace.anchors", encoding: .utf8).split(separator: "\n")
        #expect(lines.first?.hasPrefix("coffre-trace-anchors v1 ") == true)
        // Checkpoints at 64 and 128, and the clean stop's at the end (151: the creation and 150 reads).
        #expect(lines.dropFirst().map { $0.split(separator: " ")[0] } == ["64", "128", "151"], "\(lines)")
        #expect(session.daemon.log.contains("trace anchored"))
        try await session.daemon.start()
        let verify = try await session.daemon.coffre(["admin", "verify", "--json"])
        #expect(verify.status == 0, "\(verify.stdoutText)")
        #expect(verify.stdoutText.contains("\"traceAnchorsChecked\" : 3"))
    }

    /// A site may keep the anchors on another file system (`traceAnchorFile`).
    @Test func theAnchorFileCanLiveElsewhere() async throws {
        let elsewhere = try TemporaryDirectory(prefix: "coffre-anchors")
        let config = elsewhere.path + "/coffred.json"
        try #"{"traceAnchorFile": "\#(elsewhere.path)/trace.anchors"}"#.write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try await Daemon(arguments: ["--config", config])
        #expect(try await daemon.coffre(["--as", "patient:\(Identities.ins(3))", "dossier", "create"]).status == 0)
        await daemon.stop()
        #expect(!FileManager.default.fileExists(atPath: daemon.state.path + "/trace.anchors"))
        let lines = try String(contentsOfFile: elsewhere.path + "/trace.anchors", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.last?.hasPrefix("1 ") == true)
    }
}
