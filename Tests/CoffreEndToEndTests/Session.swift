import CoffreAPI
import CoffreDomain
import CoffreTesting
import Foundation
import Testing

/// A daemon plus the helpers end-to-end tests share: a patient, their assertion, files.
struct Session {
    let daemon: Daemon
    let files: TemporaryDirectory
    let patient = Identities.ins(1)
    let otherPatient = Identities.ins(2)

    init(arguments: [String] = [], launch: DaemonLaunch = DaemonLaunch()) async throws {
        daemon = try await Daemon(arguments: arguments, launch: launch)
        files = try TemporaryDirectory(prefix: "coffre-files")
    }

    /// Runs `coffre --as patient:<patient> …`.
    func asPatient(_ arguments: [String], patient: String? = nil) async throws -> ProgramResult {
        try await daemon.coffre(["--as", "patient:\(patient ?? self.patient)"] + arguments)
    }

    /// Runs `coffre --as pro:<professional> --patient <patient> <options> …`, where
    /// `professional` is `RPPS:PROFESSION[:SPECIALTY][@FINESS]`.
    func asProfessional(_ professional: String, _ arguments: [String], options: [String] = []) async throws -> ProgramResult {
        try await daemon.coffre(["--as", "pro:\(professional)", "--patient", patient] + options + arguments)
    }

    /// Writes `bytes` to a new file and returns its path.
    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let path = files.path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A freshly signed assertion for `patient` (or custom claims).
    func assertion(
        patient: String? = nil, seedPath: String? = nil, adjust: (inout AssertionClaims) -> Void = { _ in }
    ) throws -> String {
        let now = Int64(Date().timeIntervalSince1970)
        var claims = AssertionClaims(
            iss: "dev", sub: patient ?? self.patient, role: .patient, software: "tests", iat: now, exp: now + 300, jti: UUID().uuidString)
        adjust(&claims)
        return try Identities.sign(claims, seedPath: seedPath ?? daemon.state.path + "/dev-issuer.key")
    }

    /// A raw request with a valid assertion for the session's patient unless told otherwise.
    func raw(
        _ method: String, _ path: String, headers: [String: String] = [:], body: Data = Data(), contentLength: Int? = nil,
        assertion: String? = nil, abort: Bool = false
    ) throws -> RawHTTP.Response {
        var headers = headers
        if headers["Authorization"] == nil {
            headers["Authorization"] = "Coffre-Assertion " + (try assertion ?? self.assertion())
        }
        return try RawHTTP.exchange(
            socketPath: daemon.socketPath,
            request: RawHTTP.request(method, path, headers: headers, body: body, contentLength: contentLength),
            abortAfterSending: abort)
    }

    /// Committed blobs and temporary files in the daemon's state directory.
    func blobFiles() -> (committed: [String], temporary: [String]) {
        let files = daemon.state.allFiles().filter { $0.contains("/blobs/") }
        return (files.filter { !$0.contains("/blobs/tmp/") }, files.filter { $0.contains("/blobs/tmp/") })
    }

    /// The blob file of a document.
    func blobPath(_ id: String) -> String {
        daemon.state.path + "/blobs/" + id.prefix(2) + "/" + id
    }
}

/// The first column of each row `query` gives on the SQLite database at `database`, a line
/// each (blobs in hex), through Python's sqlite3: the tests read and damage the index as an
/// outsider would, not through the vault's code.
func sqlite(_ database: String, _ query: String) async throws -> String {
    let script =
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print('\\n'.join(x[0].hex() if isinstance(x[0], bytes) else str(x[0]) for x in r))"
    let result = try await Program.run("/usr/bin/env", ["python3", "-c", script, database, query])
    #expect(result.status == 0, "\(result.stderr)")
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

extension ProgramResult {
    /// The first line of stdout, trimmed (an id printed by `doc put` or `dossier create`).
    var firstLine: String { stdoutText.split(separator: "\n").first.map(String.init) ?? "" }
}
