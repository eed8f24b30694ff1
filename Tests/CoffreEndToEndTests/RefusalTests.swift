import CoffreAPI
import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// Bad input gets a clear error with a stable code, and changes nothing.
@Suite struct RefusalTests {
    @Test func malformedRequestsAreRefusedWithStableCodes() async throws {
        let session = try await Session()
        let base = "/v1/patients/\(session.patient)"
        #expect(try session.raw("POST", base + "/dossier", body: Data("{not json".utf8)).problemCode == "malformed_json")
        #expect(try session.raw("POST", base + "/dossier", body: Data("[1]".utf8)).problemCode == "malformed_json")
        #expect(try session.raw("POST", base + "/dossier", body: Data(repeating: 32, count: 70_000)).problemCode == "payload_too_large")
        #expect(try session.raw("POST", base + "/dossier").status == 201)
        #expect(try session.raw("POST", base + "/dossier").problemCode == "dossier_exists")

        let upload = Data("contenu".utf8)
        #expect(
            try session.raw("POST", base + "/documents", headers: ["Coffre-Class": "NOPE"], body: upload).problemCode == "unknown_class")
        #expect(try session.raw("POST", base + "/documents", body: upload).problemCode == "unknown_class")
        #expect(
            try session.raw(
                "POST", base + "/documents", headers: ["Coffre-Class": "BIOLOGIE", "Coffre-Care-Date": "2026-02-30"], body: upload
            )
            .problemCode == "invalid_metadata")
        #expect(
            try session.raw("POST", base + "/documents", headers: ["Coffre-Class": "BIOLOGIE", "Coffre-Title": "%ZZ"], body: upload)
                .problemCode == "invalid_metadata")
        #expect(try session.raw("GET", base + "/documents?class=nope").problemCode == "unknown_class")

        // Identifiers with path characters never reach the file system.
        for path in [
            "/documents/..%2F..%2Fkeys%2Fcoffre-master-1", "/documents/0123456789ABCDEF0123456789abcdef", "/documents/%2e%2e",
            "/documents/0123456789abcdef0123456789abcde%00",
        ] {
            #expect(try session.raw("GET", base + path).problemCode == "invalid_identifier", "\(path)")
        }
        #expect(try session.raw("GET", base + "/documents/../../../etc/passwd").status == 404)
        #expect(try session.raw("GET", "/v1/patients/12345/dossier").problemCode == "invalid_ins")
        #expect(try session.raw("GET", "/v1/patients/..%2F..%2Fetc/dossier").problemCode == "invalid_ins")
        #expect(try session.raw("GET", base + "/documents/0123456789abcdef0123456789abcdef").problemCode == "document_not_found")
        #expect(try session.raw("GET", "/v1/nothing-here").problemCode == "route_not_found")

        // Every refusal is a problem document, and nothing was stored.
        let refused = try session.raw("POST", base + "/documents", headers: ["Coffre-Class": "NOPE"], body: upload)
        #expect(refused.headers["content-type"] == "application/problem+json")
        #expect(session.blobFiles().committed.isEmpty)
        let list = try await session.asPatient(["doc", "list", "--json"])
        #expect(list.stdoutText.contains("\"documents\" : [\n\n  ]"))
    }

    /// Refusals before any decision (here: no assertion) are counted by kind and written once a
    /// second with their count, so a flood of them cannot grow the trace one entry per request.
    @Test func aFloodOfAnonymousRefusalsIsCountedNotWrittenOneByOne() async throws {
        let session = try await Session()
        let request = RawHTTP.request("GET", "/v1/patients/\(session.patient)/dossier")
        let flood = 300
        for _ in 0..<flood {
            let reply = try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: request)
            #expect(reply.problemCode == "assertion_missing")
        }
        let database = session.daemon.state.path + "/index.sqlite"
        let query = """
            SELECT count(*) || ' ' || coalesce(sum(json_extract(detail, '$.count')), 0) FROM trace_entry
            WHERE dossier_id IS NULL AND outcome = 'refused' AND action = 'GET /v1/patients/{ins}/dossier'
              AND json_extract(detail, '$.errorCode') = 'assertion_missing'
            """
        var counted = ""
        let written = try await eventually(every: .milliseconds(200)) {
            counted = try await sqlite(database, query)
            return counted.hasSuffix(" \(flood)")
        }
        #expect(written, "\(counted)")
        let entries = Int(counted.split(separator: " ").first ?? "") ?? .max
        // One entry a second at most: the flood took a few seconds at worst.
        #expect(entries >= 1 && entries <= 30, "\(counted)")
    }

    /// A connection that floods requests nobody vouched for is throttled: 64 such refusals at
    /// once, then about 64 a second. Measured from below only (a loaded machine is slower,
    /// never faster).
    @Test func aConnectionFloodingRefusedRequestsIsThrottled() async throws {
        let session = try await Session()
        let one = "GET /v1/patients/\(session.patient)/dossier HTTP/1.1\r\nHost: localhost\r\n\r\n"
        let last = "GET /v1/patients/\(session.patient)/dossier HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        let pipelined = Data((String(repeating: one, count: 159) + last).utf8)
        let began = ContinuousClock.now
        let reply = try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: pipelined)
        let elapsed = ContinuousClock.now - began
        #expect(reply.status == 401)
        #expect(reply.text.components(separatedBy: "HTTP/1.1 401").count - 1 == 159, "every request answered")
        // The 96 past the first 64 came at most 64 a second: 1.5 s at least.
        #expect(elapsed >= .milliseconds(1_400), "\(elapsed)")
        // Another connection is not slowed by it.
        let other = ContinuousClock.now
        #expect(try session.raw("GET", "/v1/patients/\(session.patient)/dossier", assertion: "x").status == 401)
        #expect(ContinuousClock.now - other < .seconds(5), "not held back like the flooding connection")
    }

    @Test func oversizeAndCutOffUploadsLeaveNothingBehind() async throws {
        let session = try await Session(arguments: ["--max-document-bytes", "100000"])
        let base = "/v1/patients/\(session.patient)"
        _ = try session.raw("POST", base + "/dossier")
        let headers = ["Coffre-Class": "AUTR_DOC"]
        // Declared too large: refused before a byte is stored.
        #expect(
            try session.raw("POST", base + "/documents", headers: headers, body: Data(count: 10), contentLength: 200_000).problemCode
                == "payload_too_large")
        // Streamed past the limit without a length (chunked).
        var chunked = Data()
        for _ in 0..<4 { chunked += Data("8000\r\n".utf8) + Data(count: 0x8000) + Data("\r\n".utf8) }
        chunked += Data("0\r\n\r\n".utf8)
        let request =
            Data(
                "POST \(base)/documents HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCoffre-Class: AUTR_DOC\r\nTransfer-Encoding: chunked\r\n"
                    .utf8)
            + Data("Authorization: Coffre-Assertion \(try session.assertion())\r\n\r\n".utf8) + chunked
        #expect(try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: request).problemCode == "payload_too_large")
        // Cut off mid-stream: the client dies after 5,000 of 90,000 bytes.
        _ = try session.raw("POST", base + "/documents", headers: headers, body: Data(count: 5_000), contentLength: 90_000, abort: true)
        // Through the client: an over-limit file and an unknown class.
        let big = try session.file("big", SecureRandom.bytes(150_000))
        let tooLarge = try await session.asPatient(["doc", "put", big, "--class", "AUTR_DOC"])
        #expect(tooLarge.status == 65)
        #expect(tooLarge.stderr.contains("payload_too_large"))
        let unknown = try await session.asPatient(["doc", "put", big, "--class", "NOPE"])
        #expect(unknown.status == 65)

        try await Task.sleep(for: .milliseconds(300))
        let files = session.blobFiles()
        #expect(files.committed.isEmpty, "\(files.committed)")
        #expect(files.temporary.isEmpty, "\(files.temporary)")
        let list = try await session.asPatient(["doc", "list", "--json"])
        #expect(list.stdoutText.contains("\"documents\" : [\n\n  ]"))
        // The daemon is still serving.
        let small = try await session.asPatient(["doc", "put", try session.file("small", [1, 2, 3]), "--class", "AUTR_DOC"])
        #expect(small.status == 0)
    }

    /// What the HTTP decoder refuses gets a problem document too; a connection that sends no
    /// complete request is closed after the idle timeout, and others are served meanwhile.
    @Test func framingErrorsAndSlowClientsAreRefused() async throws {
        let session = try await Session(arguments: ["--idle-timeout-seconds", "1"])
        let base = "/v1/patients/\(session.patient)"
        let huge = try session.raw("GET", base + "/dossier", headers: ["X-Padding": String(repeating: "a", count: 40_000)])
        #expect(huge.status == 431)
        #expect(huge.problemCode == "headers_too_large")
        #expect(huge.headers["content-type"] == "application/problem+json")
        let many = Dictionary(uniqueKeysWithValues: (0..<300).map { ("X-H\($0)", "v") })
        #expect(try session.raw("GET", "/v1/health", headers: many).problemCode == "headers_too_large")
        let garbage = try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: Data("GET /v1/health HTTP/9.9\r\n\r\n".utf8))
        #expect(garbage.status == 400)
        #expect(garbage.problemCode == "malformed_request")
        let badLength = try RawHTTP.exchange(
            socketPath: session.daemon.socketPath, request: Data("POST \(base)/dossier HTTP/1.1\r\nContent-Length: -5\r\n\r\n".utf8))
        #expect(badLength.problemCode == "malformed_request")

        // Slowloris: a request line, then silence. The daemon hangs up after the idle timeout.
        let slow = try RawHTTP.connect(socketPath: session.daemon.socketPath)
        defer { close(slow) }
        _ = "GET /v1/health HTTP/1.1\r\nHost: x\r\n".withCString { send(slow, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
        #expect(try RawHTTP.exchange(socketPath: session.daemon.socketPath, request: RawHTTP.request("GET", "/v1/health")).status == 200)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let started = ContinuousClock.now
        var byte: UInt8 = 0
        let received = recv(slow, &byte, 1, 0)
        #expect(received == 0, "the daemon closes the connection (EOF), it does not answer or wait for ever")
        #expect(ContinuousClock.now - started < .seconds(8))
        // The daemon is still serving.
        #expect(try session.raw("POST", base + "/dossier").status == 201)
    }

    @Test func theClientChecksIdentifiersBeforeSending() async throws {
        let session = try await Session()
        let badINS = try await session.daemon.coffre(["--as", "patient:184056312345659", "dossier", "show"])
        #expect(badINS.status == 64)
        #expect(badINS.stderr.contains("invalid INS"))
        let badPatient = try await session.asPatient(["dossier", "show", "--patient", "12345"])
        #expect(badPatient.status == 65)
        let badID = try await session.asPatient(["doc", "get", "../../etc/passwd"])
        #expect(badID.status == 65)
        #expect(badID.stderr.contains("invalid_identifier"))
        let noDaemon = try await Program.run(
            Binaries.coffre, ["--socket", session.files.path + "/none.sock", "--as", "patient:\(session.patient)", "dossier", "show"])
        #expect(noDaemon.status == 69)
        let noDossier = try await session.asPatient(["dossier", "show", "--json"])
        #expect(noDossier.status == 66)
        #expect(noDossier.stderr.contains("\"code\":\"dossier_not_found\""))
    }
}
