import CoffreAPI
import CoffreCrypto
import CoffreDomain
import CoffreTesting
import Foundation
import Testing

/// Who is calling: signed assertions for people, SO_PEERCRED for operators.
@Suite struct IdentityTests {
    @Test func assertionsMustBePresentValidSignedTrustedAndCurrent() async throws {
        let session = try await Session()
        let path = "/v1/patients/\(session.patient)/dossier"
        func code(_ authorization: String?) throws -> String? {
            try session.raw("GET", path, headers: authorization.map { ["Authorization": $0] } ?? ["Authorization": ""]).problemCode
        }
        #expect(
            try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: RawHTTP.request("GET", path)).problemCode
                == "assertion_missing")
        #expect(try code("Bearer abc") == "assertion_malformed")
        #expect(try code("Coffre-Assertion v1.abc") == "assertion_malformed")
        #expect(try code("Coffre-Assertion " + String(repeating: "a", count: 5000)) == "assertion_malformed")

        // Forged: claims changed after signing.
        let valid = try session.assertion()
        let parts = valid.split(separator: ".").map(String.init)
        var claims = try JSONSerialization.jsonObject(with: Data(Base64URL.decode(parts[1])!)) as! [String: Any]
        claims["sub"] = session.otherPatient
        let forgedPayload = Base64URL.encode(Array(try JSONSerialization.data(withJSONObject: claims)))
        #expect(try code("Coffre-Assertion v1.\(forgedPayload).\(parts[2])") == "assertion_bad_signature")

        // Signed by a key the daemon does not trust under that issuer name.
        let stranger = try TemporaryDirectory(prefix: "coffre-issuer")
        try (Hex.encode(Ed25519SigningKey.generateSeed()) + "\n").write(toFile: stranger.path + "/seed", atomically: true, encoding: .utf8)
        let now = Int64(Date().timeIntervalSince1970)
        let strangerClaims = AssertionClaims(
            iss: "dev", sub: session.patient, role: .patient, software: "t", iat: now, exp: now + 60, jti: "x")
        #expect(
            try code("Coffre-Assertion " + Identities.sign(strangerClaims, seedPath: stranger.path + "/seed")) == "assertion_bad_signature")

        #expect(try code("Coffre-Assertion " + session.assertion { $0.iss = "someone-else" }) == "assertion_unknown_issuer")
        #expect(
            try code(
                "Coffre-Assertion "
                    + session.assertion {
                        $0.iat -= 7200; $0.exp -= 7000
                    }) == "assertion_expired")
        #expect(
            try code(
                "Coffre-Assertion "
                    + session.assertion {
                        $0.iat += 3600; $0.exp += 3600
                    }) == "assertion_expired")
        #expect(try code("Coffre-Assertion " + session.assertion { $0.exp += 7200 }) == "assertion_malformed")
        // Extreme times are refused, never a crash (the subtraction would overflow).
        #expect(
            try code(
                "Coffre-Assertion "
                    + session.assertion {
                        $0.iat = .min; $0.exp = 1
                    }) == "assertion_malformed")
        #expect(
            try code(
                "Coffre-Assertion "
                    + session.assertion {
                        $0.iat = .max - 10; $0.exp = .max
                    }) == "assertion_expired")
        #expect(try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: RawHTTP.request("GET", "/v1/health")).status == 200)
        #expect(try code("Coffre-Assertion " + session.assertion { $0.sub = "184056312345659" }) == "assertion_malformed")
        #expect(try code("Coffre-Assertion " + session.assertion { $0.mode = .bris_de_glace }) == "assertion_malformed")
        // The genuine one passes the gate (and finds no dossier yet).
        #expect(try code("Coffre-Assertion " + valid) == "dossier_not_found")
        // Through the client: a tampered assertion file is refused with exit 77.
        let file = try session.file("assertion", Array("v1.\(forgedPayload).\(parts[2])".utf8))
        let refused = try await session.daemon.coffre(["--assertion", file, "--patient", session.patient, "dossier", "show"])
        #expect(refused.status == 77)
        #expect(refused.stderr.contains("assertion_bad_signature"))
    }

    /// An assertion is single-use: a copy (from a log, a proxy, a core dump) is refused, also
    /// after a restart, while the client, which mints one per request, keeps working.
    @Test func assertionsAreSingleUse() async throws {
        let session = try await Session()
        let path = "/v1/patients/\(session.patient)/dossier"
        let token = try session.assertion()
        #expect(try session.raw("POST", path, assertion: token).status == 201)
        #expect(try session.raw("GET", path, assertion: token).problemCode == "assertion_replayed")
        // The same jti from another issuer is another assertion; the same one re-signed is not.
        #expect(try session.raw("GET", path, assertion: session.assertion { $0.jti = "fixed-jti" }).status == 200)
        #expect(try session.raw("GET", path, assertion: session.assertion { $0.jti = "fixed-jti" }).problemCode == "assertion_replayed")
        #expect(try session.raw("GET", path, assertion: session.assertion { $0.jti = "" }).problemCode == "assertion_malformed")

        // Several requests in one command: each gets its own assertion.
        let file = try session.file("report.pdf", Array(repeating: 7, count: 3 << 20))
        let put = try await session.asPatient(["doc", "put", file, "--class", "AUTR_DOC"])
        #expect(put.status == 0, "\(put.stderr)")
        let fetched = try await session.asPatient(["doc", "get", put.firstLine, "-o", session.files.path + "/copy"])
        #expect(fetched.status == 0, "\(fetched.stderr)")

        // What was used before a restart cannot be told apart from a fresh one afterwards: an
        // assertion issued before the daemon started is refused; a new one passes.
        let beforeRestart = try session.assertion { $0.iat -= 2 }
        await session.daemon.stop()
        try await session.daemon.start()
        #expect(try session.raw("GET", path, assertion: beforeRestart).problemCode == "assertion_replayed")
        #expect(try session.raw("GET", path).status == 200)
        // A token file from real software is good for one request.
        let tokenFile = try session.file("assertion", Array(try session.assertion().utf8))
        #expect(try await session.daemon.coffre(["--assertion", tokenFile, "dossier", "show"]).status == 0)
        let again = try await session.daemon.coffre(["--assertion", tokenFile, "dossier", "show"])
        #expect(again.status == 77)
        #expect(again.stderr.contains("assertion_replayed"))
        // A command that needs a second request stops before sending it, and says why.
        let followFile = try session.file("assertion-follow", Array(try session.assertion().utf8))
        let follow = try await session.daemon.coffre(["--assertion", followFile, "trace", "--follow"])
        #expect(follow.status == 64)
        #expect(follow.stderr.contains("assertion_used"), "\(follow.stderr)")
        // Operator calls read no assertion (SO_PEERCRED says who): they do not use the token up.
        let operatorFile = try session.file("assertion-operator", Array(try session.assertion().utf8))
        let status = try await session.daemon.coffre(["--assertion", operatorFile, "admin", "status"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(try await session.daemon.coffre(["--assertion", operatorFile, "dossier", "show"]).status == 0)
    }

    @Test func aPatientCannotReachAnotherPatientsDossier() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let put = try await session.asPatient(["doc", "put", try session.file("mine", Array("secret".utf8)), "--class", "BIOLOGIE"])
        let id = put.firstLine
        _ = try await session.asPatient(["dossier", "create"], patient: session.otherPatient)
        for arguments in [["dossier", "show"], ["doc", "list"], ["doc", "get", id], ["doc", "show", id]] {
            let attempt = try await session.asPatient(arguments + ["--patient", session.patient], patient: session.otherPatient)
            #expect(attempt.status == 77, "\(arguments)")
            #expect(attempt.stderr.contains("access_denied"))
            #expect(!attempt.stdoutText.contains("secret"))
        }
        // Nor through their own dossier's path with the other's document id.
        let crossed = try session.raw(
            "GET", "/v1/patients/\(session.otherPatient)/documents/\(id)/content",
            assertion: try session.assertion(patient: session.otherPatient))
        #expect(crossed.problemCode == "document_not_found")
        // Nor create one for somebody else.
        let third = Identities.ins(3)
        let create = try await session.asPatient(["dossier", "create", "--patient", third])
        #expect(create.status == 77)
    }

    @Test func operatorCallsAreForOperatorsOnly() async throws {
        let session = try await Session()
        // The tests run as root: an operator.
        let status = try await session.daemon.coffre(["admin", "status", "--json"])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdoutText.contains("\"activeMasterKeyVersion\" : 1"))
    }

    /// Another user, through a socket opened up for the test, is refused by SO_PEERCRED.
    @Test(.enabled(if: TestEnvironment.canActAsAnotherUser, "needs root and setpriv to call as another uid"))
    func anotherUserIsNoOperator() async throws {
        let session = try await Session()
        chmod(session.daemon.state.path, 0o711)
        chmod(session.daemon.socketPath, 0o666)
        let stranger = try await Program.run(
            "/usr/bin/setpriv",
            [
                "--reuid=65534", "--regid=65534", "--clear-groups", Binaries.reachableByAnyUser + "/coffre", "--socket",
                session.daemon.socketPath, "admin", "status",
            ])
        #expect(stranger.status == 77, "\(stranger.stderr)")
        #expect(stranger.stderr.contains("not_operator"))
    }
}
