import CoffreTesting
import Foundation
import Testing

/// The development clock drives the dossier's time rules and survives a restart; assertions
/// keep working (their lifetime is checked on the real clock); outside development it is refused.
@Suite struct ClockTests {
    let doctor = Identities.rpps(41)

    @Test func hiddenDocumentsAreNoticedAfterTwoWeeksAndReleasedAfterAMonth() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        _ = try await session.asPatient(["access", "grant", doctor])
        let asDoctor = ["--as", "pro:\(doctor):10", "--patient", session.patient]
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-01"]).status == 0)
        let hidden = try await session.daemon.coffre(
            asDoctor + ["doc", "put", try session.file("annonce", Array("résultat".utf8)), "--class", "BIOLOGIE", "--hidden-from-patient"])
        #expect(hidden.status == 0, "\(hidden.stderr)")
        func waiting() async throws -> Int {
            let result = try await session.asPatient(["notifications", "--json"])
            return result.stdoutText.components(separatedBy: "hidden_document_waiting").count - 1
        }

        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-14"]).status == 0)
        #expect(try await waiting() == 0)
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-16"]).status == 0)
        #expect(try await waiting() == 1)
        #expect(try await waiting() == 1, "the notice is stored once however often it is computed")
        let notices = try await session.asPatient(["notifications"])
        #expect(!notices.stdoutText.contains(hidden.firstLine), "the notice reveals nothing of the document")
        #expect(try await session.asPatient(["doc", "get", hidden.firstLine]).status == 77)

        // The clock survives a restart; a month after upload the document shows itself.
        await session.daemon.stop()
        try await session.daemon.start()
        let clock = try await session.daemon.coffre(["admin", "clock", "--json"])
        #expect(clock.stdoutText.contains("2030-01-16"))
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-02-01"]).status == 0)
        #expect(try await session.asPatient(["doc", "get", hidden.firstLine]).stdout == Data("résultat".utf8))
    }

    @Test func theClockCannotBeSetOutsideDevelopmentMode() async throws {
        let development = try await Daemon()
        await development.stop()
        let production = try await Daemon(state: development.state, development: false)
        let refused = try await production.coffre(["admin", "clock", "set", "2040-01-01"])
        #expect(refused.status == 77)
        #expect(refused.stderr.contains("development_only"))
        let shown = try await production.coffre(["admin", "clock", "--json"])
        #expect(shown.stdoutText.contains("\"settable\" : false"))
    }
}
