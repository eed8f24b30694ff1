#if canImport(Glibc)
    import Glibc
#endif
import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// Slow and many clients cannot take the daemon down: transfers that crawl are closed, and
/// newcomers past the caps are refused at once with `busy`, never a transfer already admitted.
@Suite struct SlowClientTests {
    /// A daemon with `settings` in its configuration file (small caps, a short rate window), so
    /// that the test sees them act in seconds.
    static func session(_ settings: String) async throws -> Session {
        let files = try TemporaryDirectory(prefix: "coffre-config")
        let config = files.path + "/coffred.json"
        try settings.write(toFile: config, atomically: true, encoding: .utf8)
        defer { withExtendedLifetime(files) {} }
        return try await Session(arguments: ["--config", config])
    }

    /// An upload that sends its head and one byte, then trickles.
    static func trickle(_ session: Session, patient: String) throws -> Int32 {
        let fd = try RawHTTP.connect(socketPath: session.daemon.socketPath)
        let head = RawHTTP.request(
            "POST", "/v1/patients/\(patient)/documents",
            headers: ["Authorization": "Coffre-Assertion " + (try session.assertion(patient: patient)), "Coffre-Class": "AUTR_DOC"],
            contentLength: 100_000)
        try send(fd, head + Data([1]))
        return fd
    }

    static func send(_ fd: Int32, _ data: Data) throws {
        let sent = data.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent != data.count { throw POSIXError(.EPIPE) }
    }

    /// What the connection has said so far: nil while it says nothing (within `wait`), "" once
    /// closed with nothing said, or the answer's first line and body.
    static func answer(_ fd: Int32, wait: Duration = .milliseconds(200)) -> String? {
        var timeout = timeval(tv_sec: Int(wait.components.seconds), tv_usec: Int(wait.components.attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 65536)
        var text = Data()
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                text.append(contentsOf: buffer[0..<n])
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return text.isEmpty ? nil : String(decoding: text, as: UTF8.self) }
            return String(decoding: text, as: UTF8.self)
        }
    }

    /// The caps alone (no minimum rate): however long the trickles hold their places.
    @Test func tricklingUploadsAreCappedWhileOthersAreServed() async throws {
        let session = try await Self.session(#"{"minimumTransferBytesPerSecond": 0, "maxTransfers": 6, "maxTransfersPerCaller": 4}"#)
        let other = session.otherPatient
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        #expect(try await session.asPatient(["dossier", "create"], patient: other).status == 0)
        let document = try session.file("doc", SecureRandom.bytes(200_000))
        let stored = try await session.asPatient(["doc", "put", document, "--class", "CPT_REND"], patient: other)
        #expect(stored.status == 0, "\(stored.stderr)")

        // Hundreds of trickling uploads from one caller: four are admitted, every other one is
        // refused at once with busy, before it holds anything.
        let connections = try (0..<300).map { _ in try Self.trickle(session, patient: session.patient) }
        var held: [Int32] = []
        var busy = 0
        for fd in connections {
            // A refusal comes at once, but on a loaded machine not always within 200 ms: an
            // upload is taken for held only after two seconds of silence (four of them wait so).
            switch Self.answer(fd, wait: .seconds(2)) {
            case nil: held.append(fd)
            case let text? where text.contains("503") && text.contains("\"busy\""): busy += 1
            case let text?: Issue.record("unexpected answer: \(text)")
            }
        }
        #expect(held.count == 4)
        #expect(busy == 296)

        // Another patient is served meanwhile: a fetch and a store.
        let fetched = try await session.asPatient(["doc", "get", stored.firstLine], patient: other)
        #expect(fetched.status == 0, "\(fetched.stderr)")
        let original = try Data(contentsOf: URL(fileURLWithPath: document))
        #expect(fetched.stdout == original)
        #expect(try await session.asPatient(["doc", "put", document, "--class", "CPT_REND"], patient: other).status == 0)

        // The daemon's cap: two more callers' uploads fill it (4 + 2 = 6); a newcomer is then
        // refused, and no upload already admitted is.
        let third = Identities.ins(3)
        #expect(try await session.asPatient(["dossier", "create"], patient: third).status == 0)
        let more = try (0..<2).map { _ in try Self.trickle(session, patient: other) }
        #expect(more.allSatisfy { Self.answer($0) == nil })
        let newcomer = try Self.trickle(session, patient: third)
        let refused = Self.answer(newcomer, wait: .seconds(5)) ?? ""
        #expect(refused.contains("503") && refused.contains("the vault has 6 transfers in flight"), "\(refused)")
        close(newcomer)

        // The admitted uploads still run: they are answered only once their body is complete
        // or cut. Cut, they give their places back (once the daemon has seen them go, and
        // removed their temporary files): the first caller stores again.
        #expect((held + more).allSatisfy { Self.answer($0) == nil })
        let busyBefore = try await Self.busyTraced(session)
        for fd in connections + more { close(fd) }
        #expect(await eventually(every: .milliseconds(100)) { session.blobFiles().temporary.isEmpty })
        #expect(
            try await eventually(every: .milliseconds(200)) {
                try await session.asPatient(["doc", "put", document, "--class", "CPT_REND"]).status == 0
            })
        // The refusals are traced, each counted.
        #expect(busyBefore <= 297)
        #expect(try await eventually(every: .milliseconds(200)) { try await Self.busyTraced(session) >= 297 })
    }

    /// The `busy` refusals in the trace, summed over their counts.
    static func busyTraced(_ session: Session) async throws -> Int {
        let query = """
            SELECT coalesce(sum(json_extract(detail, '$.count')), 0) FROM trace_entry
            WHERE dossier_id IS NULL AND json_extract(detail, '$.errorCode') = 'busy'
            """
        return Int(try await sqlite(session.daemon.state.path + "/index.sqlite", query)) ?? -1
    }

    /// Trickling a byte every half second is under the minimum rate: each upload is closed
    /// within a few windows, and nothing of it is kept.
    @Test func tricklingUploadsAreClosed() async throws {
        let session = try await Self.session(#"{"minimumTransferBytesPerSecond": 4096, "transferRateWindowSeconds": 2}"#)
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let trickling = try (0..<6).map { _ in try Self.trickle(session, patient: session.patient) }
        defer { for fd in trickling { close(fd) } }
        var closed = Set<Int32>()
        let deadline = ContinuousClock.now + .seconds(60)
        while closed.count < trickling.count && ContinuousClock.now < deadline {
            for fd in trickling where !closed.contains(fd) {
                if (try? Self.send(fd, Data([1]))) == nil || Self.answer(fd, wait: .milliseconds(50)) != nil { closed.insert(fd) }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(closed.count == trickling.count, "\(closed.count) of \(trickling.count) closed")
        #expect(session.daemon.log.contains("connection closed: its transfer was slower than the minimum rate"))
        #expect(await eventually(every: .milliseconds(100)) { session.blobFiles().temporary.isEmpty })
        #expect(session.blobFiles().committed.isEmpty)
        let list = try await session.asPatient(["--json", "doc", "list"])
        #expect(list.stdoutText.contains("\"documents\" : [\n\n  ]"), "\(list.stdoutText)")
    }

    @Test func aDownloadNobodyReadsIsClosed() async throws {
        let session = try await Self.session(#"{"minimumTransferBytesPerSecond": 4096, "transferRateWindowSeconds": 2}"#)
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let size = 8 << 20
        let stored = try await session.asPatient(["doc", "put", try session.file("big", SecureRandom.bytes(size)), "--class", "CPT_REND"])
        #expect(stored.status == 0)
        let fd = try RawHTTP.connect(socketPath: session.daemon.socketPath)
        defer { close(fd) }
        try Self.send(
            fd,
            RawHTTP.request(
                "GET", "/v1/patients/\(session.patient)/documents/\(stored.firstLine)/content",
                headers: ["Authorization": "Coffre-Assertion " + (try session.assertion())]))
        // Read nothing for a while: the daemon waits on a client that does not read.
        try await Task.sleep(for: .seconds(7))
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            total += n
        }
        // What the socket's buffers held, then the end: far short of the document.
        #expect(total > 0 && total < size / 2, "\(total) bytes read")
        #expect(session.daemon.log.contains("connection closed: its transfer was slower than the minimum rate"))
    }
}
