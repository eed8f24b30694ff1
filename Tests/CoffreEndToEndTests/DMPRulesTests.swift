import CoffreTesting
import Foundation
import Testing

/// The DMP's rules that a review found Coffre got wrong, each run through `coffre` as the
/// reviewer ran it: who may be médecin traitant or administrator, emergencies, closed dossiers,
/// a minor's confidential care, and the trace and notices of document changes.
@Suite struct DMPRulesTests {
    let doctor = Identities.rpps(41)
    let optician = Identities.rpps(42)
    let podiatrist = Identities.rpps(43)
    let urgentist = Identities.rpps(44)
    let representative = Identities.ins(7)

    func pro(_ session: Session, _ rpps: String, _ profession: String, _ arguments: [String], mode: String? = nil) async throws
        -> ProgramResult
    {
        // `rpps` may name the establishment too: RPPS@FINESS, as `--as` takes it after the profession.
        let parts = rpps.split(separator: "@", maxSplits: 1).map(String.init)
        let establishment = parts.count == 2 ? "@" + parts[1] : ""
        return try await session.asProfessional(
            "\(parts[0]):\(profession)\(establishment)", arguments, options: mode.map { ["--mode", $0] } ?? [])
    }

    func asRepresentative(_ session: Session, _ arguments: [String]) async throws -> ProgramResult {
        try await session.daemon.coffre(["--as", "rep:\(representative):\(session.patient)"] + arguments)
    }

    func json(_ result: ProgramResult, _ key: String) throws -> [[String: Any]] {
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        return object?[key] as? [[String: Any]] ?? []
    }

    /// A dossier with a masked lab result.
    func dossierWithMaskedLab(_ session: Session) async throws -> String {
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let lab = try await session.asPatient(["doc", "put", try session.file("lab", Array("HbA1c".utf8)), "--class", "BIOLOGIE"])
            .firstLine
        #expect(try await session.asPatient(["doc", "mask", lab]).status == 0)
        return lab
    }

    @Test func theMedecinTraitantIsADoctorAndAnAdministratorWasAuthorisedFirst() async throws {
        let session = try await Session()
        let lab = try await dossierWithMaskedLab(session)

        // An optician cannot be named médecin traitant.
        let named = try await session.asPatient(["dossier", "set-doctor", optician, "--profession", "28"])
        #expect(named.status == 65 && named.stderr.contains("the médecin traitant is a doctor"), "\(named.stderr)")
        #expect(try await pro(session, optician, "28", ["doc", "get", lab]).status == 77)
        // Nor an unauthorised podiatrist administrator.
        let admin = try await session.asPatient(["access", "grant", podiatrist, "--administrator"])
        #expect(admin.status == 65 && admin.stderr.contains("authorise \(podiatrist) first"), "\(admin.stderr)")
        #expect(try await pro(session, podiatrist, "80", ["doc", "get", lab]).status == 77)

        // Authorised first, then administrator: the médecin traitant's rights, masked documents included.
        #expect(try await session.asPatient(["access", "grant", podiatrist]).status == 0)
        #expect(try await session.asPatient(["access", "grant", podiatrist, "--administrator"]).status == 0)
        #expect(try await pro(session, podiatrist, "80", ["doc", "get", lab]).stdout == Data("HbA1c".utf8))
        // Withdrawing the authorisation withdraws both.
        #expect(try await session.asPatient(["access", "revoke", podiatrist]).status == 0)
        #expect(try await pro(session, podiatrist, "80", ["doc", "get", lab]).status == 77)
        let access = try await session.asPatient(["access", "list", "--json"])
        #expect(!access.stdoutText.contains(podiatrist), "\(access.stdoutText)")

        // A doctor named médecin traitant reads it, as a doctor only.
        #expect(try await session.asPatient(["dossier", "set-doctor", doctor]).status == 0)
        #expect(try await pro(session, doctor, "10", ["doc", "get", lab]).stdout == Data("HbA1c".utf8))
        #expect(try await pro(session, doctor, "21", ["doc", "get", lab]).status == 77)
    }

    @Test func emergenciesConsultAndCentre15IsTheRegulatingDoctors() async throws {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let note = try await session.asPatient(["doc", "put", try session.file("n", [1, 2]), "--class", "ORD_SOIN"]).firstLine

        // A podiatrist is no SAMU regulator.
        let podiatristCall = try await pro(session, podiatrist, "80", ["doc", "list"], mode: "centre_15")
        #expect(podiatristCall.status == 77 && podiatristCall.stderr.contains("emergency.centre-15-regulating-doctor-only"))
        // The regulating doctor consults, and stores nothing.
        #expect(try await pro(session, urgentist, "10", ["doc", "get", note], mode: "centre_15").stdout == Data([1, 2]))
        let stored = try await pro(
            session, urgentist, "10", ["doc", "put", try session.file("x", [3]), "--class", "CPT_REND"], mode: "centre_15")
        #expect(stored.status == 77 && stored.stderr.contains("emergency.consultation-only"), "\(stored.stderr)")
        let brisDeGlace = try await session.daemon.coffre([
            "--as", "pro:\(podiatrist):80", "--patient", session.patient, "--mode", "bris_de_glace", "--reason", "malaise",
            "doc", "put", try session.file("y", [4]), "--class", "ORD_SOIN",
        ])
        #expect(brisDeGlace.status == 77 && brisDeGlace.stderr.contains("emergency.consultation-only"), "\(brisDeGlace.stderr)")
        #expect(try json(try await session.asPatient(["doc", "list", "--json"]), "documents").count == 1)
    }

    @Test func aClosedDossierIsItsHoldersAlone() async throws {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let note = try await session.asPatient(["doc", "put", try session.file("n", [5]), "--class", "ORD_SOIN"]).firstLine
        #expect(try await session.asPatient(["access", "grant", podiatrist]).status == 0)
        #expect(try await session.asPatient(["dossier", "set-doctor", doctor]).status == 0)
        #expect(try await pro(session, podiatrist, "80", ["doc", "get", note]).status == 0)
        #expect(try await session.asPatient(["dossier", "close"]).status == 0)

        for (rpps, profession, mode) in [(podiatrist, "80", nil), (doctor, "10", nil), (urgentist, "10", "centre_15")] {
            let refused = try await pro(session, rpps, profession, ["doc", "get", note], mode: mode)
            #expect(refused.status == 77 && refused.stderr.contains("dossier.closed-holder-only"), "\(rpps): \(refused.stderr)")
        }
        #expect(try await session.asPatient(["doc", "get", note]).stdout == Data([5]))
    }

    /// A professional acting for an establishment (`--as pro:RPPS:PROFESSION@FINESS`): blocking the
    /// establishment withdraws them, authorised or not, and only while they act for it.
    @Test func blockingAnEstablishmentWithdrawsItsProfessionals() async throws {
        let session = try await Session()
        let hospital = "750712184"
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        let note = try await session.asPatient(["doc", "put", try session.file("n", [7]), "--class", "ORD_SOIN"]).firstLine
        #expect(try await session.asPatient(["access", "grant", doctor]).status == 0)
        #expect(try await pro(session, doctor + "@" + hospital, "10", ["doc", "get", note]).stdout == Data([7]))

        #expect(try await session.asPatient(["access", "block", hospital]).status == 0)
        let blocked = try await pro(session, doctor + "@" + hospital, "10", ["doc", "get", note])
        #expect(blocked.status == 77 && blocked.stderr.contains("professional.organization-blocked"), "\(blocked.stderr)")
        let emergency = try await pro(session, urgentist + "@" + hospital, "10", ["doc", "list"], mode: "centre_15")
        #expect(emergency.status == 77 && emergency.stderr.contains("professional.organization-blocked"), "\(emergency.stderr)")
        // The same doctor acting for themselves, or for another establishment, is not blocked.
        #expect(try await pro(session, doctor, "10", ["doc", "get", note]).stdout == Data([7]))
        #expect(try await pro(session, doctor + "@310000005", "10", ["doc", "get", note]).stdout == Data([7]))
        // The trace says for which establishment each acted.
        #expect(try await session.asPatient(["trace", "--json"]).stdoutText.contains(hospital))

        #expect(try await session.asPatient(["access", "unblock", hospital]).status == 0)
        #expect(try await pro(session, doctor + "@" + hospital, "10", ["doc", "get", note]).stdout == Data([7]))
        // A FINESS that fails its check is refused by the client.
        #expect(try await pro(session, doctor + "@750712185", "10", ["doc", "list"]).status == 64)
    }

    @Test func aMinorsConfidentialCareReachesNoRepresentative() async throws {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        #expect(try await session.asPatient(["access", "grant", doctor]).status == 0)
        // The doctor's confidential care: the dossier read, then a document hidden from the
        // representatives stored.
        #expect(try await pro(session, doctor, "10", ["doc", "list"]).status == 0)
        let secret = try await pro(
            session, doctor, "10", ["doc", "put", try session.file("c", [6]), "--class", "CPT_REND", "--hidden-from-representatives"]
        ).firstLine
        #expect(!secret.isEmpty)

        // The representative: not in the list, not in the notices, not in the trace.
        #expect(try json(try await asRepresentative(session, ["doc", "list", "--json"]), "documents").isEmpty)
        let notices = try await asRepresentative(session, ["notifications", "--json"])
        #expect(notices.status == 0 && !notices.stdoutText.contains(doctor), "\(notices.stdoutText)")
        #expect(try json(notices, "notifications").isEmpty, "\(notices.stdoutText)")
        let trace = try await asRepresentative(session, ["trace", "--json"])
        #expect(trace.status == 0, "\(trace.stderr)")
        #expect(!trace.stdoutText.contains(doctor) && !trace.stdoutText.contains(secret), "\(trace.stdoutText)")
        #expect(trace.stdoutText.contains("document.list"), "the doctor's read is there, without who")
        // Acknowledging everything leaves the patient's own notices pending.
        #expect(try await asRepresentative(session, ["notifications", "--all"]).status == 0)

        // The patient: the document, who wrote it, and the notices.
        #expect(try json(try await session.asPatient(["doc", "list", "--json"]), "documents").count == 1)
        let kinds = try json(try await session.asPatient(["notifications", "--json"]), "notifications").compactMap { $0["kind"] as? String }
        #expect(Set(kinds) == ["professional_access", "document_added"], "\(kinds)")
        #expect(try await session.asPatient(["trace", "--json"]).stdoutText.contains(doctor))
    }

    @Test func documentChangesAreTracedByIdAndNoticed() async throws {
        let session = try await Session()
        #expect(try await session.asPatient(["dossier", "create"]).status == 0)
        #expect(try await session.asPatient(["access", "grant", doctor]).status == 0)
        let first = try await pro(session, doctor, "10", ["doc", "put", try session.file("a", [1]), "--class", "CPT_REND"]).firstLine
        let second = try await pro(session, doctor, "10", ["doc", "replace", first, try session.file("b", [2])]).firstLine
        let hidden = try await pro(
            session, doctor, "10", ["doc", "put", try session.file("h", [3]), "--class", "CPT_REND", "--hidden-from-patient"]
        ).firstLine
        #expect(try await pro(session, doctor, "10", ["doc", "release", hidden]).status == 0)
        #expect(try await pro(session, doctor, "10", ["doc", "delete", second]).status == 0)

        // The trace names every document: a replacement both versions.
        // One JSON object a line.
        let entries = try await session.asPatient(["trace", "--json"]).stdoutText.split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] ?? [:]
        }
        let replace = try #require(entries.first { $0["action"] as? String == "document.replace" })
        #expect(replace["documentId"] as? String == second && replace["replacesDocumentId"] as? String == first)
        #expect(entries.first { $0["action"] as? String == "document.add" }?["documentId"] as? String == first)
        for action in ["document.release", "document.delete"] {
            #expect(entries.contains { $0["action"] as? String == action && $0["documentId"] != nil }, "\(action)")
        }
        #expect(try await session.asPatient(["trace"]).stdoutText.contains("document.replace \(second) (replaces \(first))"))

        // The patient is told of each: added, replaced, released, deleted.
        let notices = try json(try await session.asPatient(["notifications", "--json"]), "notifications")
        let kinds = notices.compactMap { $0["kind"] as? String }
        for kind in ["document_added", "document_replaced", "document_released", "document_deleted"] {
            #expect(kinds.contains(kind), "\(kind) in \(kinds)")
        }
        #expect(notices.first { $0["kind"] as? String == "document_released" }?["documentId"] as? String == hidden)
        #expect(notices.first { $0["kind"] as? String == "document_deleted" }?["documentId"] as? String == second)
    }
}
