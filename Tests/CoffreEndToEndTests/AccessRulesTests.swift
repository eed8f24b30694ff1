import CoffreCrypto
import CoffreTesting
import Foundation
import Testing

/// The DMP's rules through the real client: professionals, authorisations, blocks, the matrix,
/// masking, hidden documents, versions and emergencies.
@Suite struct AccessRulesTests {
    let doctor = Identities.rpps(11)
    let pharmacist = Identities.rpps(12)
    let optician = Identities.rpps(13)
    let attending = Identities.rpps(14)
    let emergencyDoctor = Identities.rpps(15)

    func pro(_ session: Session, _ rpps: String, _ profession: String, _ arguments: [String], extra: [String] = []) async throws
        -> ProgramResult
    {
        try await session.asProfessional("\(rpps):\(profession)", arguments, options: extra)
    }

    func ids(_ result: ProgramResult) throws -> [String] {
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        return (object?["documents"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
    }

    @Test func professionalsSeeWhatThePatientAndTheMatrixAllow() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        let lab = try await session.asPatient(["doc", "put", try session.file("lab", Array("HbA1c 6,1 %".utf8)), "--class", "BIOLOGIE"])
            .firstLine
        let report = try await session.asPatient(["doc", "put", try session.file("cr", Array("compte rendu".utf8)), "--class", "CPT_REND"])
            .firstLine

        // Not authorised yet: nothing.
        #expect(try await pro(session, doctor, "10", ["doc", "list"]).status == 77)
        #expect(try await session.asPatient(["access", "grant", doctor]).status == 0)
        #expect(try await session.asPatient(["access", "grant", pharmacist]).status == 0)
        #expect(try await session.asPatient(["access", "grant", optician]).status == 0)

        // A doctor reads every class; a pharmacist lab results but not reports; an optician neither.
        #expect(Set(try ids(try await pro(session, doctor, "10", ["doc", "list", "--json"]))) == [lab, report])
        #expect(try await pro(session, doctor, "10", ["doc", "get", report]).stdout == Data("compte rendu".utf8))
        #expect(try ids(try await pro(session, pharmacist, "21", ["doc", "list", "--json"])) == [lab])
        #expect(try await pro(session, pharmacist, "21", ["doc", "get", lab]).status == 0)
        let denied = try await pro(session, pharmacist, "21", ["doc", "get", report])
        #expect(denied.status == 77)
        #expect(denied.stderr.contains("matrix.class-denied"))
        #expect(try ids(try await pro(session, optician, "28", ["doc", "list", "--json"])).isEmpty)
        #expect(try await pro(session, optician, "28", ["doc", "show", lab]).status == 77)

        // Professionals manage nothing.
        #expect(try await pro(session, doctor, "10", ["access", "list"]).status == 77)
        #expect(try await pro(session, doctor, "10", ["doc", "mask", lab]).status == 77)

        // Masking hides a document from professionals but its author and the médecin traitant.
        let written = try await pro(
            session, doctor, "10", ["doc", "put", try session.file("ord", Array("ordonnance".utf8)), "--class", "ORD_SOIN"])
        #expect(written.status == 0, "\(written.stderr)")
        let prescription = written.firstLine
        #expect(try await session.asPatient(["doc", "mask", lab]).status == 0)
        #expect(try await session.asPatient(["doc", "mask", prescription]).status == 0)
        #expect(try await pro(session, pharmacist, "21", ["doc", "get", lab]).status == 77)
        #expect(try await pro(session, doctor, "10", ["doc", "get", prescription]).status == 0)
        #expect(!(try ids(try await pro(session, doctor, "10", ["doc", "list", "--json"]))).contains(lab))
        #expect(try await session.asPatient(["dossier", "set-doctor", attending]).status == 0)
        #expect(try await pro(session, attending, "10", ["doc", "get", lab]).status == 0)
        #expect(try await session.asPatient(["doc", "unmask", lab]).status == 0)
        #expect(try await pro(session, pharmacist, "21", ["doc", "get", lab]).status == 0)

        // Blocking wins over authorisation; the médecin traitant cannot be blocked.
        #expect(try await session.asPatient(["access", "block", doctor]).status == 0)
        let blocked = try await pro(session, doctor, "10", ["doc", "get", prescription])
        #expect(blocked.status == 77)
        #expect(blocked.stderr.contains("professional.blocked"))
        #expect(try await session.asPatient(["access", "block", attending]).status == 77)
        #expect(try await pro(session, attending, "10", ["doc", "list"]).status == 0)
        #expect(try await session.asPatient(["access", "unblock", doctor]).status == 0)
        #expect(try await pro(session, doctor, "10", ["doc", "get", prescription]).status == 0)
        let access = try await session.asPatient(["access", "list", "--json"])
        #expect(access.stdoutText.contains(attending))
    }

    @Test func versionsHiddenDocumentsAndEmergencies() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        #expect(try await session.asPatient(["access", "grant", doctor]).status == 0)

        // A document hidden from the patient until the author releases it.
        let hidden = try await pro(
            session, doctor, "10",
            ["doc", "put", try session.file("annonce", Array("diagnostic".utf8)), "--class", "CPT_REND", "--hidden-from-patient"])
        #expect(hidden.status == 0, "\(hidden.stderr)")
        #expect(try ids(try await session.asPatient(["doc", "list", "--json"])).isEmpty)
        #expect(try await session.asPatient(["doc", "get", hidden.firstLine]).status == 77)
        #expect(
            try await session.asPatient(["doc", "put", try session.file("x", [1]), "--class", "AUTR_DOC", "--hidden-from-patient"]).status
                == 65)
        #expect(try await pro(session, doctor, "10", ["doc", "release", hidden.firstLine]).status == 0)
        #expect(try await session.asPatient(["doc", "get", hidden.firstLine]).stdout == Data("diagnostic".utf8))

        // Replacing keeps the history; only the author replaces or deletes.
        let first = try await pro(
            session, doctor, "10", ["doc", "put", try session.file("v1", Array("v1".utf8)), "--class", "ORD_SOIN", "--title", "Ordonnance"])
        let second = try await pro(session, doctor, "10", ["doc", "replace", first.firstLine, try session.file("v2", Array("v2".utf8))])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(try await session.asPatient(["doc", "replace", second.firstLine, try session.file("v3", [3])]).status == 77)
        #expect(try await pro(session, doctor, "10", ["doc", "replace", first.firstLine, try session.file("v3", [3])]).status == 65)
        let current = try ids(try await session.asPatient(["doc", "list", "--json"]))
        #expect(current.contains(second.firstLine) && !current.contains(first.firstLine))
        let history = try await session.asPatient(["doc", "list", "--all-versions", "--json"])
        #expect(try ids(history).contains(first.firstLine))
        #expect(history.stdoutText.contains("\"status\" : \"superseded\""))
        let shown = try await session.asPatient(["doc", "show", second.firstLine, "--json"])
        #expect(shown.stdoutText.contains("\"title\" : \"Ordonnance\""))
        #expect(shown.stdoutText.contains("\"replaces\" : \"\(first.firstLine)\""))
        #expect(try await session.asPatient(["doc", "get", first.firstLine]).stdout == Data("v1".utf8))
        #expect(try await session.asPatient(["doc", "delete", second.firstLine]).status == 77)
        #expect(try await pro(session, doctor, "10", ["doc", "delete", second.firstLine]).status == 0)
        #expect(!(try ids(try await session.asPatient(["doc", "list", "--json"]))).contains(second.firstLine))

        // The patient's own documents are theirs to delete.
        let own = try await session.asPatient(["doc", "put", try session.file("mine", [1, 2]), "--class", "AUTR_DOC"])
        #expect(try await session.asPatient(["doc", "delete", own.firstLine]).status == 0)

        // Emergencies: allowed by default with a reason, refused once the patient says so.
        let urgent = ["--mode", "bris_de_glace", "--reason", "patient inconscient aux urgences"]
        #expect(try await pro(session, emergencyDoctor, "10", ["doc", "list"]).status == 77)
        #expect(try await pro(session, emergencyDoctor, "10", ["doc", "list"], extra: urgent).status == 0)
        let noReason = try await pro(session, emergencyDoctor, "10", ["doc", "list"], extra: ["--mode", "bris_de_glace"])
        #expect(noReason.status == 77)
        #expect(noReason.stderr.contains("assertion_malformed"))
        #expect(try await session.asPatient(["access", "emergency", "--deny", "bris_de_glace"]).status == 0)
        #expect(try await pro(session, emergencyDoctor, "10", ["doc", "list"], extra: urgent).status == 77)
        #expect(try await pro(session, emergencyDoctor, "10", ["doc", "list"], extra: ["--mode", "centre_15"]).status == 0)

        // "Mask new documents": what a professional adds next is masked.
        #expect(try await session.asPatient(["dossier", "preferences", "--mask-new-documents", "on"]).status == 0)
        let masked = try await pro(session, doctor, "10", ["doc", "put", try session.file("m", [9]), "--class", "BIOLOGIE", "--json"])
        #expect(masked.stdoutText.contains("\"masked\" : true"))
    }
}

/// Review findings, pinned: a document is all its versions, and hidden documents stay hidden
/// from their readers everywhere, in the trace too.
@Suite struct DocumentVersionRulesTests {
    let doctor = Identities.rpps(71)
    let other = Identities.rpps(72)
    let attending = Identities.rpps(73)

    @Test func maskingOrDeletingTheCurrentVersionCoversTheOlderOnes() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        _ = try await session.asPatient(["access", "grant", doctor])
        _ = try await session.asPatient(["access", "grant", other])
        let asDoctor = ["--as", "pro:\(doctor):10", "--patient", session.patient]
        let asOther = ["--as", "pro:\(other):10", "--patient", session.patient]
        let first = try await session.daemon.coffre(
            asDoctor + ["doc", "put", try session.file("v1", Array("v1".utf8)), "--class", "CPT_REND"]
        ).firstLine
        let second = try await session.daemon.coffre(asDoctor + ["doc", "replace", first, try session.file("v2", Array("v2".utf8))])
            .firstLine
        #expect(try await session.asPatient(["doc", "mask", second]).status == 0)
        #expect(try await session.daemon.coffre(asOther + ["doc", "get", first]).status == 77)
        let history = try await session.daemon.coffre(asOther + ["doc", "list", "--all-versions", "--json"])
        #expect(!history.stdoutText.contains(first) && !history.stdoutText.contains(second))
        #expect(try await session.asPatient(["doc", "unmask", second]).status == 0)
        #expect(try await session.daemon.coffre(asDoctor + ["doc", "delete", second]).status == 0)
        #expect(try await session.daemon.coffre(asOther + ["doc", "get", first]).status == 77)
    }

    @Test func hiddenDocumentsStayHiddenThroughReplacementAndTheTrace() async throws {
        let session = try await Session()
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-01"]).status == 0)
        _ = try await session.asPatient(["dossier", "create"])
        _ = try await session.asPatient(["access", "grant", doctor])
        _ = try await session.asPatient(["dossier", "set-doctor", attending])
        let asDoctor = ["--as", "pro:\(doctor):10", "--patient", session.patient]
        let hidden = try await session.daemon.coffre(
            asDoctor + ["doc", "put", try session.file("h", [1]), "--class", "BIOLOGIE", "--hidden-from-patient"]
        ).firstLine
        _ = try await session.daemon.coffre(["--as", "pro:\(attending):10", "--patient", session.patient, "doc", "get", hidden])
        // The patient's trace does not name the hidden document; the médecin traitant's does.
        #expect(!(try await session.asPatient(["trace"]).stdoutText.contains(hidden)))
        #expect(
            try await session.daemon.coffre(["--as", "pro:\(attending):10", "--patient", session.patient, "trace"]).stdoutText.contains(
                hidden))
        // Replacing it on day 29 does not restart the month: on day 31 the new version shows.
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-01-30"]).status == 0)
        let replaced = try await session.daemon.coffre(asDoctor + ["doc", "replace", hidden, try session.file("h2", [2])]).firstLine
        #expect(try await session.asPatient(["doc", "get", replaced]).status == 77)
        #expect(try await session.daemon.coffre(["admin", "clock", "set", "2030-02-01"]).status == 0)
        #expect(try await session.asPatient(["doc", "get", replaced]).stdout == Data([2]))
    }
}
