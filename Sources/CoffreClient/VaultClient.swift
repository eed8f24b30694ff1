#if canImport(Glibc)
    import Glibc
#endif
public import CoffreAPI
import CoffreCrypto
public import CoffreDomain
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Talks to `coffred` over its Unix socket: one method per API call, problems turned into
/// `ClientError`s. Content streams both ways in bounded memory.
public struct VaultClient: Sendable {
    let socketPath: String
    let assertion: AssertionSource?
    let http: HTTPClient

    /// A client for the daemon at `socketPath`; `assertion` gives each person-level request its
    /// assertion (none for operator calls, which the kernel identifies).
    public init(socketPath: String, assertion: AssertionSource?) {
        self.socketPath = socketPath
        self.assertion = assertion
        self.http = Self.sharedHTTP
    }

    /// One client for the process, like `HTTPClient.shared` (never shut down, so never torn
    /// down under a request), but for a local socket: a connection that fails is not retried
    /// with back-off until the request's deadline. A daemon that died between the socket probe
    /// and the request is reported at once, not after a minute and a half.
    static let sharedHTTP: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout.connect = .seconds(5)
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    /// The daemon's health.
    public func health() async throws(ClientError) -> HealthView {
        try await json(.GET, "/v1/health")
    }

    /// Operator status: key versions and arena usage.
    public func adminStatus() async throws(ClientError) -> AdminStatusView {
        try await json(.GET, "/v1/admin/status")
    }

    /// Creates the patient's dossier.
    public func createDossier(_ ins: INS) async throws(ClientError) -> DossierView {
        try await json(.POST, "/v1/patients/\(ins.value)/dossier", body: Array("{}".utf8))
    }

    /// The patient's dossier.
    public func dossier(_ ins: INS) async throws(ClientError) -> DossierView {
        try await json(.GET, "/v1/patients/\(ins.value)/dossier")
    }

    /// Documents of the dossier.
    public func documents(_ ins: INS, documentClass: DocumentClass?, allVersions: Bool) async throws(ClientError) -> DocumentList {
        var query: [String] = []
        if let documentClass { query.append("class=\(documentClass.rawValue)") }
        if allVersions { query.append("allVersions=true") }
        return try await json(.GET, "/v1/patients/\(ins.value)/documents" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
    }

    /// One document's metadata.
    public func document(_ ins: INS, id: DocumentID) async throws(ClientError) -> DocumentView {
        try await json(.GET, "/v1/patients/\(ins.value)/documents/\(id.value)")
    }

    /// The dossier's trace after entry `after`.
    public func trace(_ ins: INS, after: Int64 = 0) async throws(ClientError) -> TraceList {
        try await json(.GET, "/v1/patients/\(ins.value)/trace?after=\(after)")
    }

    /// The caller's notifications (pending only, or all).
    public func notifications(_ ins: INS, includeAcknowledged: Bool) async throws(ClientError) -> NotificationList {
        try await json(.GET, "/v1/patients/\(ins.value)/notifications" + (includeAcknowledged ? "?all=true" : ""))
    }

    /// Acknowledges notifications (`ids`, or all pending when nil).
    public func acknowledge(_ ins: INS, ids: [String]?) async throws(ClientError) -> AcknowledgeResult {
        try await json(
            .POST, "/v1/patients/\(ins.value)/notifications/ack",
            body: try encode(ids.map { AcknowledgeRequest(ids: $0) } ?? AcknowledgeRequest(all: true)))
    }

    /// Closes the dossier.
    public func closeDossier(_ ins: INS, delete: Bool, death: Bool) async throws(ClientError) -> DossierView {
        try await json(
            .POST, "/v1/patients/\(ins.value)/dossier/close", body: try encode(CloseDossierRequest(delete: delete, death: death)))
    }

    /// Reopens a closed dossier.
    public func reopenDossier(_ ins: INS) async throws(ClientError) -> DossierView {
        try await json(.POST, "/v1/patients/\(ins.value)/dossier/reopen", body: Array("{}".utf8))
    }

    /// Opposes the dossier: it is destroyed at once.
    public func opposeDossier(_ ins: INS) async throws(ClientError) -> DossierPurgedView {
        try await json(.POST, "/v1/patients/\(ins.value)/dossier/oppose", body: Array("{}".utf8))
    }

    /// Sets (reason) or lifts (nil) a legal hold (operators).
    public func hold(_ ins: INS, reason: String?) async throws(ClientError) -> DossierView {
        if let reason {
            return try await json(.POST, "/v1/admin/patients/\(ins.value)/hold", body: try encode(HoldRequest(reason: reason)))
        }
        return try await json(.DELETE, "/v1/admin/patients/\(ins.value)/hold")
    }

    /// Records the patient's death (operators): the dossier is closed and kept for the legal
    /// retention.
    public func recordDeath(_ ins: INS) async throws(ClientError) -> DossierView {
        try await json(.POST, "/v1/admin/patients/\(ins.value)/death")
    }

    /// How many dossiers the retention job has to look at.
    public func retentionDue() async throws(ClientError) -> RetentionDueView {
        try await json(.GET, "/v1/retention/due")
    }

    /// One retention batch.
    public func retentionBatch(after: String, limit: Int, dryRun: Bool) async throws(ClientError) -> RetentionBatchView {
        try await json(.POST, "/v1/retention/run", body: try encode(RetentionRunRequest(after: after, limit: limit, dryRun: dryRun)))
    }

    /// The vault's clock.
    public func clock() async throws(ClientError) -> ClockView {
        try await json(.GET, "/v1/admin/clock")
    }

    /// Sets the development clock.
    public func setClock(_ now: String) async throws(ClientError) -> ClockView {
        try await json(.POST, "/v1/admin/clock", body: try encode(SetClockRequest(now: now)))
    }

    /// Checks the vault's integrity (operators). With `progress`, the daemon streams progress
    /// lines (documents read, of how many) before the report.
    public func verify(
        sample: Int? = nil, progress: (@Sendable (_ checked: Int, _ total: Int) -> Void)? = nil
    ) async throws(ClientError) -> VerifyReport {
        let path = "/v1/admin/verify" + (sample.map { "?sample=\($0)" } ?? "")
        guard let progress else { return try await json(.POST, path) }
        var request = try makeRequest(.POST, path)
        request.headers.add(name: "Accept", value: "application/x-ndjson")
        let response = try await send(request)
        guard response.status == .ok else { throw await problem(from: response) }
        var pending: [UInt8] = []
        do {
            for try await buffer in response.body {
                pending += buffer.readableBytesView
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Data(pending[..<newline])
                    pending.removeSubrange(...newline)
                    if let report = try? JSONDecoder().decode(VerifyReport.self, from: line) { return report }
                    if let step = try? JSONDecoder().decode(VerifyProgress.self, from: line) {
                        progress(step.checked, step.total)
                    } else if let problem = try? JSONDecoder().decode(Problem.self, from: line) {
                        throw ClientError(problem: problem)
                    }
                }
            }
        } catch let error as ClientError {
            throw error
        } catch {
            throw ClientError(
                code: "socket_unreachable", message: "the daemon stopped answering during the check: \(error)",
                exitCode: ExitStatus.unavailable)
        }
        throw ClientError(
            code: "socket_unreachable", message: "the daemon ended the check without a report; see its log",
            exitCode: ExitStatus.unavailable)
    }

    /// Names the médecin traitant.
    public func setAttendingDoctor(_ ins: INS, rpps: String, profession: String) async throws(ClientError) -> AccessView {
        try await json(
            .PUT, "/v1/patients/\(ins.value)/dossier/attending-doctor",
            body: try encode(AttendingDoctorRequest(rpps: rpps, profession: profession)))
    }

    /// Changes the patient's preferences.
    public func setPreferences(_ ins: INS, _ preferences: PreferencesRequest) async throws(ClientError) -> AccessView {
        try await json(.PATCH, "/v1/patients/\(ins.value)/dossier/preferences", body: try encode(preferences))
    }

    /// Who may see the dossier.
    public func access(_ ins: INS) async throws(ClientError) -> AccessView {
        try await json(.GET, "/v1/patients/\(ins.value)/access")
    }

    /// Sets the emergency switches.
    public func setEmergency(_ ins: INS, _ emergency: EmergencyRequest) async throws(ClientError) -> AccessView {
        try await json(.PATCH, "/v1/patients/\(ins.value)/access/emergency", body: try encode(emergency))
    }

    /// Adds `member` to (or removes it from) one of the patient's lists: `authorized`,
    /// `administrators` or `blocked`.
    public func changeAccess(_ ins: INS, list: String, member: String, add: Bool) async throws(ClientError) -> AccessView {
        guard member.utf8.allSatisfy({ (48...57).contains($0) || $0 == 65 || $0 == 66 }) else {
            throw ClientError(
                code: ErrorCode.invalidIdentifier.rawValue, message: "\(member) is not an RPPS or FINESS number",
                exitCode: ExitStatus.invalidRequest)
        }
        return try await json(add ? .PUT : .DELETE, "/v1/patients/\(ins.value)/access/\(list)/\(member)")
    }

    /// Masks, unmasks, releases or deletes a document (`action` is the path's last word).
    public func changeDocument(_ ins: INS, id: DocumentID, action: String) async throws(ClientError) -> DocumentView {
        if action == "delete" { return try await json(.DELETE, "/v1/patients/\(ins.value)/documents/\(id.value)") }
        return try await json(.POST, "/v1/patients/\(ins.value)/documents/\(id.value)/\(action)")
    }

    func encode<T: Encodable>(_ value: T) throws(ClientError) -> [UInt8] {
        do {
            return Array(try JSONEncoder().encode(value))
        } catch {
            throw ClientError(code: "encoding_failed", message: "cannot encode the request: \(error)", exitCode: ExitStatus.serverFailure)
        }
    }

    /// Metadata of an upload.
    public struct Upload: Sendable {
        /// Required for a new document; a replacement keeps the replaced version's when nil.
        public var documentClass: DocumentClass?
        public var title: String?
        public var typeCode: String?
        public var careDate: CareDate?
        public var mediaType: String?
        public var hiddenFromPatient: Bool
        public var hiddenFromRepresentatives: Bool

        public init(
            documentClass: DocumentClass?, title: String?, typeCode: String?, careDate: CareDate?,
            mediaType: String?, hiddenFromPatient: Bool, hiddenFromRepresentatives: Bool
        ) {
            self.documentClass = documentClass
            self.title = title
            self.typeCode = typeCode
            self.careDate = careDate
            self.mediaType = mediaType
            self.hiddenFromPatient = hiddenFromPatient
            self.hiddenFromRepresentatives = hiddenFromRepresentatives
        }
    }

    // MARK: Plumbing

    /// RFC 3986 unreserved characters: everything else in a title is percent-encoded, so the
    /// header stays ASCII whatever the title's language.
    static let unreservedASCII = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    func makeRequest(_ method: HTTPMethod, _ path: String) throws(ClientError) -> HTTPClientRequest {
        let url = URL(httpURLWithSocketPath: socketPath, uri: path)!
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        // Only a person's routes read an assertion: operator and retention calls are told apart
        // by SO_PEERCRED, and must not use up a single-use `--assertion FILE` token.
        if let assertion, path.hasPrefix("/v1/patients/") {
            request.headers.add(name: "Authorization", value: "\(CoffreHeader.authorizationScheme) \(try assertion.next())")
        }
        return request
    }

    func send(_ request: HTTPClientRequest) async throws(ClientError) -> HTTPClientResponse {
        try probeSocket()
        do {
            return try await http.execute(request, timeout: .hours(24))
        } catch {
            throw ClientError(
                code: "socket_unreachable", message: "cannot talk to coffred at \(socketPath): \(error)", exitCode: ExitStatus.unavailable)
        }
    }

    /// Connects once by hand before handing the request to AsyncHTTPClient, whose pool retries a
    /// refused connection with back-off until the request's deadline: a missing daemon or a
    /// socket this user may not open should fail at once, with the reason.
    func probeSocket() throws(ClientError) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw ClientError(code: "socket_unreachable", message: "the socket path is too long: \(socketPath)", exitCode: ExitStatus.usage)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result != 0 else { return }
        let reason: String
        switch errno {
        case ENOENT: reason = "no daemon socket at \(socketPath); start coffred (make run) or pass --socket / COFFRE_SOCKET"
        case EACCES: reason = "permission denied on \(socketPath); is this user in the daemon's group?"
        case ECONNREFUSED: reason = "nothing listens on \(socketPath); is coffred running?"
        default: reason = "cannot connect to \(socketPath): \(String(cString: strerror(errno)))"
        }
        throw ClientError(code: "socket_unreachable", message: reason, exitCode: ExitStatus.unavailable)
    }

    func json<T: Decodable>(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil) async throws(ClientError) -> T {
        var request = try makeRequest(method, path)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(body)
        }
        return try await decode(try await send(request))
    }

    func decode<T: Decodable>(_ response: HTTPClientResponse) async throws(ClientError) -> T {
        guard (200..<300).contains(response.status.code) else { throw await problem(from: response) }
        do {
            let body = try await response.body.collect(upTo: 64 << 20)
            return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
        } catch {
            throw ClientError(
                code: "bad_response", message: "the daemon's answer could not be read: \(error)", exitCode: ExitStatus.serverFailure)
        }
    }

    func problem(from response: HTTPClientResponse) async -> ClientError {
        let body = try? await response.body.collect(upTo: 1 << 20)
        if let body, let problem = try? JSONDecoder().decode(Problem.self, from: Data(body.readableBytesView)) {
            return ClientError(problem: problem)
        }
        return ClientError(
            code: "http_\(response.status.code)", message: "the daemon answered \(response.status)", exitCode: ExitStatus.serverFailure)
    }
}
