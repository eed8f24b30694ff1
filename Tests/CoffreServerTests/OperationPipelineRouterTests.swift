import CoffreAPI
import CoffreDomain
@testable import CoffreStore
import CoffreTesting
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import CoffreServer

/// The routes over the one pipeline, in-process: every person-level operation leaves exactly
/// one entry in the dossier's trace, allowed or not; a refusal says nothing of a dossier's
/// existence; the clock drives the notices.
@Suite struct OperationPipelineRouterTests {
    static let patient = Identities.ins(1)
    static let stranger = Identities.rpps(7)
    static let doctor = Identities.rpps(8)
    static let attending = Identities.rpps(9)

    /// One call of the table: who, what, and the trace entry it must leave.
    struct Call: Sendable {
        var method: HTTPRequest.Method
        var path: String
        var body: String? = nil
        var headers: HTTPFields = [:]
        var action: String
        var status: HTTPResponse.Status
    }

    /// The trace of the patient's dossier as the vault holds it (no read of it is traced).
    static func trace(_ fixture: ServerFixture) async throws -> [TraceRecord] {
        try await fixture.vault.traceEntries(for: try await fixture.vault.dossier(for: INS(patient)!))
    }

    static func send(_ client: any TestClientProtocol, _ fixture: ServerFixture, _ call: Call, as who: HTTPFields) async throws
        -> TestResponse
    {
        var headers = who
        for field in call.headers { headers.append(field) }
        return try await client.execute(
            uri: "/v1/patients/\(patient)" + call.path, method: call.method, headers: headers,
            body: call.body.map { ByteBuffer(string: $0) })
    }

    @Test func everyOperationLeavesExactlyOneEntryInTheDossiersTrace() async throws {
        let fixture = try await ServerFixture()
        let patient: @Sendable () throws -> HTTPFields = { try fixture.person(Self.patient) }
        let stranger: @Sendable () throws -> HTTPFields = { try fixture.person(Self.stranger, .professional, profession: "10") }
        try await fixture.test { client in
            #expect(
                try await client.execute(uri: "/v1/patients/\(Self.patient)/dossier", method: .post, headers: patient()).status == .created)
            let stored = try await Self.send(
                client, fixture,
                Call(
                    method: .post, path: "/documents", body: "compte rendu",
                    headers: [HTTPField.Name(CoffreHeader.documentClass)!: "CPT_REND"],
                    action: "document.add", status: .created), as: patient())
            let id = try JSONDecoder().decode(DocumentView.self, from: Data(stored.body.readableBytesView)).id.value
            let calls: [Call] = [
                Call(method: .get, path: "/dossier", action: "dossier.read", status: .ok),
                Call(method: .get, path: "/access", action: "access.read", status: .ok),
                Call(
                    method: .put, path: "/dossier/attending-doctor", body: #"{"rpps":"\#(Self.attending)","profession":"10"}"#,
                    action: "dossier.manage",
                    status: .ok),
                Call(
                    method: .patch, path: "/dossier/preferences", body: #"{"notifyEveryAccess":true}"#, action: "dossier.manage",
                    status: .ok),
                Call(method: .patch, path: "/access/emergency", body: #"{"centre15":false}"#, action: "dossier.manage", status: .ok),
                Call(method: .put, path: "/access/authorized/\(Self.doctor)", action: "dossier.manage", status: .ok),
                Call(method: .delete, path: "/access/authorized/\(Self.doctor)", action: "dossier.manage", status: .ok),
                Call(method: .get, path: "/documents", action: "document.list", status: .ok),
                Call(method: .get, path: "/documents/\(id)", action: "document.metadata", status: .ok),
                Call(method: .get, path: "/documents/\(id)/content", action: "document.content", status: .ok),
                Call(method: .post, path: "/documents/\(id)/mask", action: "document.mask", status: .ok),
                Call(method: .post, path: "/documents/\(id)/unmask", action: "document.mask", status: .ok),
                Call(method: .get, path: "/notifications", action: "notifications.read", status: .ok),
                Call(method: .post, path: "/notifications/ack", body: #"{"all":true}"#, action: "notifications.read", status: .ok),
                Call(method: .get, path: "/trace", action: "trace.read", status: .ok),
                Call(method: .post, path: "/dossier/close", body: "{}", action: "dossier.close", status: .ok),
                Call(method: .post, path: "/dossier/close", body: "{}", action: "dossier.close", status: .conflict),
                Call(method: .post, path: "/dossier/reopen", action: "dossier.reopen", status: .ok),
            ]
            for call in calls {
                // The patient: allowed (or refused by the dossier's state), one entry each.
                var before = try await Self.trace(fixture).count
                let answer = try await Self.send(client, fixture, call, as: patient())
                #expect(answer.status == call.status, "\(call.method) \(call.path): \(String(buffer: answer.body))")
                var after = try await Self.trace(fixture)
                #expect(after.count == before + 1, "\(call.method) \(call.path)")
                #expect(after.last?.action == call.action && after.last?.detail?.actorID == Self.patient)
                // A stranger: denied, one entry each, in the same trace, naming them.
                before = after.count
                let denied = try await Self.send(client, fixture, call, as: stranger())
                #expect(denied.status == .forbidden, "\(call.method) \(call.path) by a stranger")
                after = try await Self.trace(fixture)
                #expect(after.count == before + 1, "\(call.method) \(call.path) by a stranger")
                #expect(after.last?.outcome == "denied" && after.last?.detail?.actorID == Self.stranger)
            }
            // A new document's entry names it (the replacement too).
            let replaced = try await Self.send(
                client, fixture,
                Call(method: .post, path: "/documents/\(id)/replace", body: "v2", action: "document.replace", status: .created),
                as: patient())
            let newID = try JSONDecoder().decode(DocumentView.self, from: Data(replaced.body.readableBytesView)).id.value
            let entries = try await Self.trace(fixture)
            #expect(entries.last?.action == "document.replace" && entries.last?.detail?.documentID == newID)
            #expect(entries.contains { $0.action == "document.add" && $0.detail?.documentID == id })
        }
    }

    /// A stranger gets the same answer for a patient with a dossier and for one without.
    @Test func aRefusalSaysNothingOfTheDossiersExistence() async throws {
        let fixture = try await ServerFixture()
        let other = Identities.ins(2)
        try await fixture.test { client in
            _ = try await client.execute(uri: "/v1/patients/\(Self.patient)/dossier", method: .post, headers: fixture.person(Self.patient))
            for path in ["/dossier", "/documents", "/trace", "/documents/0123456789abcdef0123456789abcdef/content"] {
                var answers: [String] = []
                for ins in [Self.patient, other] {
                    for who in [
                        try fixture.person(Self.stranger, .professional, profession: "10"), try fixture.person(Identities.ins(3)),
                    ] {
                        let answer = try await client.execute(uri: "/v1/patients/\(ins)" + path, method: .get, headers: who)
                        answers.append("\(answer.status.code) \(String(buffer: answer.body))")
                    }
                }
                #expect(answers[0] == answers[2] && answers[1] == answers[3], "\(path): \(answers)")
                #expect(answers.allSatisfy { $0.hasPrefix("403 ") }, "\(path): \(answers)")
            }
            // The patient themself learns that they have none.
            let own = try await client.execute(uri: "/v1/patients/\(other)/dossier", method: .get, headers: fixture.person(other))
            #expect(own.status == .notFound && String(buffer: own.body).contains("dossier_not_found"))
        }
    }

    /// A document hidden from the patient is announced after two weeks, once, without naming it;
    /// the clock is the vault's, set by the test.
    @Test func aHiddenDocumentWaitingTwoWeeksIsAnnouncedOnce() async throws {
        let fixture = try await ServerFixture()
        let doctor: @Sendable () throws -> HTTPFields = { try fixture.person(Self.doctor, .professional, profession: "10") }
        try await fixture.test { client in
            let patient: @Sendable () throws -> HTTPFields = { try fixture.person(Self.patient) }
            _ = try await client.execute(uri: "/v1/patients/\(Self.patient)/dossier", method: .post, headers: patient())
            _ = try await client.execute(
                uri: "/v1/patients/\(Self.patient)/access/authorized/\(Self.doctor)", method: .put, headers: patient())
            var headers = try doctor()
            headers[HTTPField.Name(CoffreHeader.documentClass)!] = "CPT_REND"
            headers[HTTPField.Name(CoffreHeader.hiddenFrom)!] = "patient"
            let stored = try await client.execute(
                uri: "/v1/patients/\(Self.patient)/documents", method: .post, headers: headers, body: ByteBuffer(string: "annonce"))
            #expect(stored.status == .created)
            func waiting() async throws -> [NotificationView] {
                let answer = try await client.execute(uri: "/v1/patients/\(Self.patient)/notifications", method: .get, headers: patient())
                return try JSONDecoder().decode(NotificationList.self, from: Data(answer.body.readableBytesView)).notifications.filter {
                    $0.kind == "hidden_document_waiting"
                }
            }
            #expect(try await waiting().isEmpty)
            try fixture.clock.set(to: fixture.clock.now() + 15 * RetentionRules.day)
            let notices = try await waiting()
            #expect(notices.count == 1 && notices.first?.documentId == nil && notices.first?.actor == nil)
            #expect(try await waiting().count == 1)
        }
    }
}

/// The per-connection budget of refusals nobody vouched for.
@Suite struct RefusalBudgetTests {
    @Test func aBurstIsFreeThenAboutSixtyFourASecond() {
        let start = ContinuousClock.now
        var budget = RefusalBudget(at: start)
        for _ in 0..<64 { #expect(budget.spend(at: start) == .zero) }
        // All at the same instant: each further one waits one more 64th of a second.
        let waits = (1...4).map { _ in budget.spend(at: start) }
        #expect(waits.map { Int(($0 / .milliseconds(1)).rounded()) } == [16, 31, 47, 63])
        // A client refused now and then never waits.
        var calm = RefusalBudget(at: start)
        for n in 0..<1_000 { #expect(calm.spend(at: start + .milliseconds(50 * n)) == .zero) }
        // However long the flood, one answer waits a second at most.
        for _ in 0..<500 { _ = budget.spend(at: start) }
        #expect(budget.spend(at: start) == RefusalBudget.longestPause)
    }
}
