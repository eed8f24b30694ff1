import CoffreTesting
import Foundation
import Testing

/// The outbox: first access, new documents, emergencies (to the médecin traitant too), and
/// acknowledgement.
@Suite struct NotificationTests {
    let doctor = Identities.rpps(31)
    let attending = Identities.rpps(32)
    let urgentist = Identities.rpps(33)

    func kinds(_ result: ProgramResult) throws -> [String] {
        let object = try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any]
        return (object?["notifications"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }
    }

    @Test func theOutboxTellsThePatientAndTheMedecinTraitant() async throws {
        let session = try await Session()
        _ = try await session.asPatient(["dossier", "create"])
        _ = try await session.asPatient(["access", "grant", doctor])
        _ = try await session.asPatient(["dossier", "set-doctor", attending])
        let asDoctor = ["--as", "pro:\(doctor):10", "--patient", session.patient]

        // First access: one notice, however many accesses follow.
        _ = try await session.daemon.coffre(asDoctor + ["doc", "list"])
        _ = try await session.daemon.coffre(asDoctor + ["dossier", "show"])
        // A document added by a professional; a hidden one says nothing yet.
        let put = try await session.daemon.coffre(asDoctor + ["doc", "put", try session.file("cr", [1]), "--class", "CPT_REND"])
        #expect(put.status == 0, "\(put.stderr)")
        _ = try await session.daemon.coffre(
            asDoctor + ["doc", "put", try session.file("h", [2]), "--class", "CPT_REND", "--hidden-from-patient"])
        // An emergency access: the patient and the médecin traitant are told.
        let urgent = ["--as", "pro:\(urgentist):10", "--patient", session.patient, "--mode", "centre_15"]
        #expect(try await session.daemon.coffre(urgent + ["doc", "list"]).status == 0)

        // The médecin traitant reads the notices meant for them (their own first access is one
        // for the patient).
        let forDoctor = try await session.daemon.coffre([
            "--as", "pro:\(attending):10", "--patient", session.patient, "notifications", "--json",
        ])
        #expect(try kinds(forDoctor) == ["emergency_access"])
        #expect(try await session.daemon.coffre(asDoctor + ["notifications"]).status == 77)

        let patient = try await session.asPatient(["notifications", "--json"])
        #expect(patient.status == 0, "\(patient.stderr)")
        let patientKinds = try kinds(patient)
        // The doctor, the urgentist and the médecin traitant: one first-access notice each.
        #expect(patientKinds.filter { $0 == "professional_access" }.count == 3, "\(patientKinds)")
        #expect(patientKinds.filter { $0 == "document_added" }.count == 1)
        #expect(patientKinds.contains("emergency_access"))

        // Acknowledged notices leave the pending list but stay in the history.
        let object = try JSONSerialization.jsonObject(with: patient.stdout) as? [String: Any]
        let first = try #require((object?["notifications"] as? [[String: Any]])?.first?["id"] as? String)
        #expect(try await session.asPatient(["notifications", "--ack", first]).stdoutText.contains("1 acknowledged"))
        #expect(try kinds(try await session.asPatient(["notifications", "--json"])).count == patientKinds.count - 1)
        #expect(try await session.asPatient(["notifications", "--all"]).status == 0)
        #expect(try kinds(try await session.asPatient(["notifications", "--json"])).isEmpty)
        #expect(try kinds(try await session.asPatient(["notifications", "--include-acknowledged", "--json"])).count == patientKinds.count)

        // Asking to be told of every access.
        _ = try await session.asPatient(["dossier", "preferences", "--notify-every-access", "on"])
        _ = try await session.daemon.coffre(asDoctor + ["doc", "list"])
        #expect(try kinds(try await session.asPatient(["notifications", "--json"])) == ["professional_access"])
    }
}
