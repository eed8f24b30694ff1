import CoffreAPI
import CoffreCrypto
import CoffreDomain
import CoffreTesting
import Foundation
import Testing

/// The hardening a hostile caller or a careless set-up meets: scoped issuers, assertions used
/// once across restarts, no core dumps, strictly named and created key files.
@Suite struct HardeningTests {
    /// The trace's anonymous refusals with error code `code`, summed over their counts.
    static func refusalsTraced(_ session: Session, code: String) async throws -> Int {
        let query = """
            SELECT coalesce(sum(json_extract(detail, '$.count')), 0) FROM trace_entry
            WHERE dossier_id IS NULL AND outcome = 'refused' AND json_extract(detail, '$.errorCode') = '\(code)'
            """
        return Int(try await sqlite(session.daemon.state.path + "/index.sqlite", query)) ?? -1
    }

    /// An issuer of the test's own, written into the daemon's trust directory with `scope`.
    static func addIssuer(_ name: String, scope: String, to session: Session) throws -> String {
        var seed = Ed25519SigningKey.generateSeed()
        defer { secureZero(&seed) }
        let key = try Ed25519SigningKey(seed: seed, in: try SecureArena(slotCount: 1))
        let seedPath = session.files.path + "/\(name).key"
        try (Hex.encode(seed) + "\n").write(toFile: seedPath, atomically: true, encoding: .utf8)
        let trust = session.daemon.state.path + "/trust/"
        try (Hex.encode(key.publicKey.bytes) + "\n").write(toFile: trust + name + ".pub", atomically: true, encoding: .utf8)
        try scope.write(toFile: trust + name + ".scope", atomically: true, encoding: .utf8)
        return seedPath
    }

    @Test func anIssuerVouchesOnlyForItsScope() async throws {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let portal = try Self.addIssuer("portal", scope: #"{"roles": ["patient"]}"#, to: session)
        let hospital = try Self.addIssuer(
            "hospital", scope: #"{"roles": ["professional"], "modes": ["normal"], "professions": ["10"]}"#, to: session)
        await session.daemon.stop()
        try await session.daemon.start()
        let dossier = "/v1/patients/\(session.patient)/dossier"
        func token(_ seedPath: String, _ issuer: String, _ adjust: (inout AssertionClaims) -> Void) throws -> String {
            try session.assertion(seedPath: seedPath) {
                $0.iss = issuer
                adjust(&$0)
            }
        }
        // Within scope: the patient portal's patient, the hospital's doctor.
        #expect(try session.raw("GET", dossier, assertion: token(portal, "portal") { _ in }).status == 200)
        let doctor = try token(hospital, "hospital") {
            $0.role = .professional
            $0.sub = Identities.rpps(5)
            $0.profession = "10"
        }
        #expect(
            try session.raw("GET", "/v1/patients/\(session.patient)/documents", assertion: doctor).problemCode != "assertion_out_of_scope")

        // Outside it: the portal's professional, emergency and representative assertions.
        let outside = [
            try token(portal, "portal") {
                $0.role = .professional
                $0.sub = Identities.rpps(6)
                $0.profession = "10"
            },
            try token(portal, "portal") {
                $0.mode = .bris_de_glace; $0.reason = "urgence"
            },
            try token(portal, "portal") {
                $0.role = .representative
                $0.sub = Identities.ins(40)
                $0.patient = session.patient
            },
            // The hospital's nurse (profession 60) and its doctor breaking the glass.
            try token(hospital, "hospital") {
                $0.role = .professional
                $0.sub = Identities.rpps(7)
                $0.profession = "60"
            },
            try token(hospital, "hospital") {
                $0.role = .professional
                $0.sub = Identities.rpps(5)
                $0.profession = "10"
                $0.mode = .bris_de_glace
                $0.reason = "urgence vitale"
            },
        ]
        for assertion in outside {
            let reply = try session.raw("GET", dossier, assertion: assertion)
            #expect(reply.status == 401)
            #expect(reply.problemCode == "assertion_out_of_scope")
        }
        // Each refusal is traced.
        #expect(
            try await eventually(every: .milliseconds(200)) { try await Self.refusalsTraced(session, code: "assertion_out_of_scope") == 5 })
        // The development issuer keeps every scope, in development mode only (it has no scope file).
        #expect(!FileManager.default.fileExists(atPath: session.daemon.state.path + "/trust/dev.scope"))
        let emergency = try session.assertion {
            $0.role = .professional
            $0.sub = Identities.rpps(8)
            $0.profession = "60"
            $0.mode = .bris_de_glace
            $0.reason = "urgence"
        }
        #expect(try session.raw("GET", dossier, assertion: emergency).problemCode != "assertion_out_of_scope")
    }

    /// Assertions used, then the daemon restarted (cleanly, or killed), then presented again:
    /// one issued 50 s ahead of the clock (within the allowed skew) is refused because the index
    /// recorded its use; one issued as it was sent, by the barrier after the start. Fresh ones
    /// are served at once after each start.
    @Test func anAssertionIsUsedOnceAcrossARestart() async throws {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let dossier = "/v1/patients/\(session.patient)/dossier"
        func ahead() throws -> String {
            try session.assertion {
                $0.iat += 50
                $0.exp = $0.iat + 300
            }
        }
        for (round, signal) in [SIGTERM, SIGKILL].enumerated() {
            let (early, current) = (try ahead(), try session.assertion())
            #expect(try session.raw("GET", dossier, assertion: early).status == 200)
            #expect(try session.raw("GET", dossier, assertion: current).status == 200)
            await session.daemon.stop(signal: signal)
            try await session.daemon.start()
            #expect(try session.raw("GET", dossier).status == 200, "a fresh assertion is served at once")
            for used in [early, current] {
                let again = try session.raw("GET", dossier, assertion: used)
                #expect(again.status == 401)
                #expect(again.problemCode == "assertion_replayed", "\(again.text)")
            }
            // Each refusal is traced (counted, and written within a second).
            #expect(
                try await eventually(every: .milliseconds(200)) {
                    try await Self.refusalsTraced(session, code: "assertion_replayed") == 2 * (round + 1)
                })
        }
    }

    @Test func theDaemonAllowsNoCoreDump() async throws {
        let daemon = try await Daemon()
        let pid = try #require(daemon.pid)
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        let core = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") })
        #expect(core.split(separator: " ").dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
    }

    /// The development issuer's key is the state directory's, never the socket's directory's,
    /// and one planted there is refused.
    @Test func theDevelopmentIssuerKeyStaysInTheStateDirectory() async throws {
        let sockets = try TemporaryDirectory(prefix: "coffre-shared")
        let state = try TemporaryDirectory(prefix: "coffred")
        let daemon = try await Daemon(state: state, socketPath: sockets.path + "/coffred.sock")
        #expect(
            try await daemon.coffre(
                ["--as", "patient:\(Identities.ins(9))", "dossier", "create"],
                environment: ["COFFRE_ISSUER_KEY": state.path + "/dev-issuer.key"]
            ).status == 0)
        #expect(!FileManager.default.fileExists(atPath: sockets.path + "/dev-issuer.key"))
        var info = stat()
        #expect(lstat(state.path + "/dev-issuer.key", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_mode & S_IFMT == S_IFREG)

        // A link in its place (to a key someone else controls) stops the start.
        let planted = try TemporaryDirectory(prefix: "coffred")
        try "00\n".write(toFile: sockets.path + "/planted", atomically: true, encoding: .utf8)
        #expect(symlink(sockets.path + "/planted", planted.path + "/dev-issuer.key") == 0)
        await #expect(throws: DaemonFailed.self) { _ = try await Daemon(state: planted) }
    }

    @Test func aMasterKeyFileWithAnAmbiguousNameStopsTheStart() async throws {
        let session = try await Session()
        await session.daemon.stop()
        let keys = session.daemon.state.path + "/keys/"
        for name in ["coffre-master-01", "coffre-master-+1", "coffre-master-0"] {
            try FileManager.default.copyItem(atPath: keys + "coffre-master-1", toPath: keys + name)
            await #expect(throws: DaemonFailed.self) { try await session.daemon.start() }
            #expect(session.daemon.log.contains("master key file \(name) is not named coffre-master-<version>"), "\(session.daemon.log)")
            try FileManager.default.removeItem(atPath: keys + name)
        }
        try await session.daemon.start()
    }
}
