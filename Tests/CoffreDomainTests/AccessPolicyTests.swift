import CoffreDomain
import Foundation
import Testing

/// The DMP's rules as a table: actor × mode × document state × flag → allow/deny and the rule.
@Suite struct AccessPolicyTests {
    static let owner = INS("184056312345658")!
    static let other = INS("269029934173285")!
    static let parent = INS("269029934173285")!
    static func rpps(_ n: Int) -> RPPS { RPPS.withCheckDigit("1000" + String(format: "%06d", n))! }
    static let doctor = rpps(1)
    static let attending = rpps(2)
    static let administrator = rpps(3)
    static let pharmacist = rpps(4)
    static let optician = rpps(5)
    static let podiatrist = rpps(6)
    static let stranger = rpps(7)
    static let blockedDoctor = rpps(8)
    static let hospitalDoctor = rpps(9)
    static let finess = "750712184"
    static let now: Int64 = 1_800_000_000_000
    static let day = DisclosureDelays.day

    static let matrix = HabilitationMatrix(
        version: "test-1",
        rows: [
            .init(profession: "10", classes: ["*"]),
            .init(profession: "21", classes: ["ORD_SOIN", "BIOLOGIE"]),
            .init(profession: "28", classes: ["ORD_SOIN"]),
            .init(profession: "80", classes: ["ORD_SOIN"]),
        ],
        typeOverrides: [.init(profession: "80", typeCode: "4548-4", allow: true)])

    static var settings: DossierSettings {
        var settings = DossierSettings()
        settings.attendingDoctor = attending.value
        settings.administrators = [administrator.value]
        settings.authorized = [doctor.value, pharmacist.value, optician.value, podiatrist.value, blockedDoctor.value, hospitalDoctor.value]
        settings.blocked = [blockedDoctor.value]
        settings.blockedOrganizations = [finess]
        return settings
    }

    static func pro(_ rpps: RPPS, _ profession: String = "10", mode: AccessMode = .normal, organization: String? = nil) -> Actor {
        Actor(
            subject: .professional(rpps, profession: Profession(profession)!, specialty: nil, organization: organization),
            mode: mode, reason: mode == .bris_de_glace ? "urgence" : nil, issuer: "test")
    }
    static let patient = Actor(subject: .patient(owner), issuer: "test")
    static let otherPatient = Actor(subject: .patient(other), issuer: "test")
    static let representative = Actor(subject: .representative(parent, of: owner), issuer: "test")

    static func document(
        _ documentClass: DocumentClass = .biologie, type: String? = nil, by author: RPPS = doctor, masked: Bool = false,
        hiddenFromPatient: Bool = false, hiddenFromRepresentatives: Bool = false, released: Bool = false,
        ageDays: Int64 = 1, status: DocumentStatus = .current
    ) -> DocumentFacts {
        DocumentFacts(
            documentClass: documentClass, typeCode: type, authorRole: .professional, authorID: author.value, status: status,
            masked: masked, hiddenFromPatient: hiddenFromPatient, hiddenFromRepresentatives: hiddenFromRepresentatives,
            releasedAt: released ? now : nil, uploadedAt: now - ageDays * day)
    }
    static let patientDocument = DocumentFacts(
        documentClass: .autreDocument, authorRole: .patient, authorID: owner.value, uploadedAt: now - day)

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var actor: Actor
        var action: DossierAction
        var document: DocumentFacts?
        var settings: DossierSettings = AccessPolicyTests.settings
        var closed = false
        var allowed: Bool
        var rule: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        // The patient.
        Case(name: "patient reads own dossier", actor: patient, action: .readDossier, allowed: true, rule: "patient.own-dossier"),
        Case(
            name: "patient reads another dossier", actor: otherPatient, action: .readDossier, allowed: false, rule: "patient.other-dossier"),
        Case(
            name: "patient reads a masked document", actor: patient, action: .readDocumentContent, document: document(masked: true),
            allowed: true, rule: "patient.own-dossier"),
        Case(
            name: "patient: hidden, 13 days", actor: patient, action: .readDocumentContent,
            document: document(hiddenFromPatient: true, ageDays: 13), allowed: false, rule: "document.hidden-from-patient"),
        Case(
            name: "patient: hidden, released early", actor: patient, action: .readDocumentContent,
            document: document(hiddenFromPatient: true, released: true), allowed: true, rule: "patient.own-dossier"),
        Case(
            name: "patient: hidden, after a month", actor: patient, action: .readDocumentContent,
            document: document(hiddenFromPatient: true, ageDays: 31), allowed: true, rule: "patient.own-dossier"),
        Case(
            name: "patient: hidden from representatives only", actor: patient, action: .readDocumentContent,
            document: document(hiddenFromRepresentatives: true), allowed: true, rule: "patient.own-dossier"),
        Case(
            name: "patient masks a professional's document", actor: patient, action: .maskDocument, document: document(), allowed: true,
            rule: "patient.masks"),
        Case(
            name: "patient cannot delete a professional's document", actor: patient, action: .deleteDocument, document: document(),
            allowed: false, rule: "document.not-author"),
        Case(
            name: "patient deletes their own document", actor: patient, action: .deleteDocument, document: patientDocument, allowed: true,
            rule: "document.author"),
        Case(
            name: "patient replaces their own document", actor: patient, action: .replaceDocument, document: patientDocument, allowed: true,
            rule: "document.author"),
        Case(
            name: "patient cannot release", actor: patient, action: .releaseDocument,
            document: document(hiddenFromPatient: true, ageDays: 31), allowed: false, rule: "document.release-by-professional"),
        Case(name: "patient manages access", actor: patient, action: .manageDossier, allowed: true, rule: "patient.own-dossier"),
        Case(
            name: "patient in emergency mode", actor: Actor(subject: .patient(owner), mode: .centre_15, issuer: "t"), action: .readDossier,
            allowed: false, rule: "patient.emergency-mode"),
        Case(
            name: "patient reads a deleted document's content", actor: patient, action: .readDocumentContent,
            document: document(status: .deleted), allowed: false, rule: "document.deleted"),
        // The legal representative.
        Case(
            name: "representative reads", actor: representative, action: .readDocumentContent, document: document(), allowed: true,
            rule: "representative.of-patient"),
        Case(
            name: "representative: hidden from representatives", actor: representative, action: .readDocumentContent,
            document: document(hiddenFromRepresentatives: true), allowed: false, rule: "document.hidden-from-representatives"),
        Case(
            name: "representative: hidden from patient", actor: representative, action: .readDocumentContent,
            document: document(hiddenFromPatient: true), allowed: false, rule: "document.hidden-from-patient"),
        Case(
            name: "representative of another patient", actor: Actor(subject: .representative(parent, of: other), issuer: "t"),
            action: .readDossier, allowed: false, rule: "representative.other-dossier"),
        // The médecin traitant and administrators.
        Case(
            name: "médecin traitant reads a masked document", actor: pro(attending), action: .readDocumentContent,
            document: document(masked: true), allowed: true, rule: "professional.medecin-traitant"),
        Case(
            name: "médecin traitant reads a hidden document", actor: pro(attending), action: .readDocumentContent,
            document: document(hiddenFromPatient: true), allowed: true, rule: "professional.medecin-traitant"),
        Case(
            name: "médecin traitant, not authorised, blocked anyway", actor: pro(attending), action: .listDocuments,
            settings: {
                var s = settings; s.blocked.insert(attending.value); return s
            }(), allowed: true, rule: "professional.medecin-traitant"),
        Case(
            name: "médecin traitant releases a hidden document", actor: pro(attending), action: .releaseDocument,
            document: document(hiddenFromPatient: true), allowed: true, rule: "professional.medecin-traitant"),
        Case(
            name: "médecin traitant cannot delete another's document", actor: pro(attending), action: .deleteDocument, document: document(),
            allowed: false, rule: "document.not-author"),
        Case(
            name: "médecin traitant reads the trace", actor: pro(attending), action: .readTrace, allowed: true,
            rule: "professional.medecin-traitant"),
        Case(
            name: "administrator reads a masked document", actor: pro(administrator), action: .readDocumentContent,
            document: document(masked: true), allowed: true, rule: "professional.administrator"),
        Case(
            name: "professionals never manage access", actor: pro(attending), action: .manageDossier, allowed: false,
            rule: "professional.patient-only"),
        Case(
            name: "professionals never mask", actor: pro(doctor), action: .maskDocument, document: document(), allowed: false,
            rule: "professional.patient-only"),
        // Authorised professionals and the matrix.
        Case(
            name: "authorised doctor reads any class", actor: pro(doctor), action: .readDocumentContent,
            document: document(.compteRendu, by: stranger), allowed: true, rule: "professional.authorized/matrix.class-allowed"),
        Case(
            name: "authorised doctor: masked", actor: pro(doctor), action: .readDocumentContent,
            document: document(by: stranger, masked: true), allowed: false, rule: "document.masked"),
        Case(
            name: "author sees own masked document", actor: pro(doctor), action: .readDocumentContent, document: document(masked: true),
            allowed: true, rule: "document.author"),
        Case(
            name: "author deletes own document", actor: pro(doctor), action: .deleteDocument, document: document(), allowed: true,
            rule: "document.author"),
        Case(
            name: "author releases own hidden document", actor: pro(doctor), action: .releaseDocument,
            document: document(hiddenFromPatient: true), allowed: true, rule: "document.author"),
        Case(
            name: "non-author cannot replace", actor: pro(pharmacist, "21"), action: .replaceDocument, document: document(.ordonnanceSoins),
            allowed: false, rule: "document.not-author"),
        Case(
            name: "pharmacist reads a prescription", actor: pro(pharmacist, "21"), action: .readDocumentContent,
            document: document(.ordonnanceSoins), allowed: true, rule: "professional.authorized/matrix.class-allowed"),
        Case(
            name: "pharmacist reads lab results", actor: pro(pharmacist, "21"), action: .readDocumentContent, document: document(.biologie),
            allowed: true, rule: "professional.authorized/matrix.class-allowed"),
        Case(
            name: "pharmacist: report", actor: pro(pharmacist, "21"), action: .readDocumentContent, document: document(.compteRendu),
            allowed: false, rule: "professional.authorized/matrix.class-denied"),
        Case(
            name: "optician: lab results", actor: pro(optician, "28"), action: .readDocumentContent, document: document(.biologie),
            allowed: false, rule: "professional.authorized/matrix.class-denied"),
        Case(
            name: "optician: report", actor: pro(optician, "28"), action: .readDocumentMetadata, document: document(.compteRendu),
            allowed: false, rule: "professional.authorized/matrix.class-denied"),
        Case(
            name: "podiatrist: lab results", actor: pro(podiatrist, "80"), action: .readDocumentContent, document: document(.biologie),
            allowed: false, rule: "professional.authorized/matrix.class-denied"),
        Case(
            name: "podiatrist: HbA1c by type override", actor: pro(podiatrist, "80"), action: .readDocumentContent,
            document: document(.biologie, type: "4548-4"), allowed: true, rule: "professional.authorized/matrix.type-allowed"),
        Case(
            name: "unlisted profession", actor: pro(doctor, "99"), action: .readDocumentContent, document: document(by: stranger),
            allowed: false, rule: "professional.authorized/matrix.profession-not-listed"),
        Case(
            name: "authorised professional adds", actor: pro(doctor), action: .addDocument, allowed: true, rule: "professional.authorized"),
        Case(
            name: "authorised professional: deleted", actor: pro(doctor), action: .readDocumentContent,
            document: document(by: stranger, status: .deleted), allowed: false, rule: "document.deleted"),
        // Not authorised, blocked.
        Case(
            name: "unauthorised professional", actor: pro(stranger), action: .listDocuments, allowed: false,
            rule: "professional.not-authorized"),
        Case(
            name: "unauthorised professional cannot add", actor: pro(stranger), action: .addDocument, allowed: false,
            rule: "professional.not-authorized"),
        Case(
            name: "blocked wins over authorisation", actor: pro(blockedDoctor), action: .readDocumentContent, document: document(),
            allowed: false, rule: "professional.blocked"),
        Case(
            name: "blocked organisation", actor: pro(hospitalDoctor, organization: finess), action: .listDocuments, allowed: false,
            rule: "professional.organization-blocked"),
        Case(
            name: "blocked in an emergency too", actor: pro(blockedDoctor, mode: .bris_de_glace), action: .listDocuments, allowed: false,
            rule: "professional.blocked"),
        Case(
            name: "ordinary professional: no trace", actor: pro(doctor), action: .readTrace, allowed: false,
            rule: "professional.patient-or-medecin-traitant-only"),
        Case(
            name: "professional cannot create a dossier", actor: pro(doctor), action: .createDossier, allowed: false,
            rule: "professional.cannot-create"),
        // Emergencies.
        Case(
            name: "bris de glace, unauthorised", actor: pro(stranger, mode: .bris_de_glace), action: .readDocumentContent,
            document: document(by: doctor), allowed: true, rule: "emergency.bris-de-glace/matrix.class-allowed"),
        Case(
            name: "bris de glace refused", actor: pro(stranger, mode: .bris_de_glace), action: .listDocuments,
            settings: {
                var s = settings; s.refuseBrisDeGlace = true; return s
            }(), allowed: false, rule: "emergency.bris-de-glace-refused"),
        Case(name: "centre 15", actor: pro(stranger, mode: .centre_15), action: .listDocuments, allowed: true, rule: "emergency.centre-15"),
        Case(
            name: "centre 15 refused", actor: pro(stranger, mode: .centre_15), action: .listDocuments,
            settings: {
                var s = settings; s.refuseCentre15 = true; return s
            }(), allowed: false, rule: "emergency.centre-15-refused"),
        Case(
            name: "emergency: masked hidden by default", actor: pro(stranger, mode: .bris_de_glace), action: .readDocumentContent,
            document: document(masked: true), allowed: false, rule: "document.masked"),
        Case(
            name: "emergency: masked shown when allowed", actor: pro(stranger, mode: .bris_de_glace), action: .readDocumentContent,
            document: document(masked: true),
            settings: {
                var s = settings; s.showMaskedInEmergency = true; return s
            }(), allowed: true, rule: "emergency.bris-de-glace/matrix.class-allowed"),
        Case(
            name: "emergency: the matrix still applies", actor: pro(stranger, "28", mode: .bris_de_glace), action: .readDocumentContent,
            document: document(.biologie), allowed: false, rule: "emergency.bris-de-glace/matrix.class-denied"),

        // Emergencies consult (L1111-17); centre 15 is the SAMU's regulating doctor's.
        Case(
            name: "centre 15 is a doctor's: a podiatrist is refused", actor: pro(stranger, "80", mode: .centre_15),
            action: .listDocuments, allowed: false, rule: "emergency.centre-15-regulating-doctor-only"),
        Case(
            name: "centre 15 does not store", actor: pro(stranger, mode: .centre_15), action: .addDocument, allowed: false,
            rule: "emergency.consultation-only"),
        Case(
            name: "bris de glace does not store", actor: pro(stranger, mode: .bris_de_glace), action: .addDocument, allowed: false,
            rule: "emergency.consultation-only"),
        Case(
            name: "bris de glace does not delete, even its own author", actor: pro(doctor, mode: .bris_de_glace),
            action: .deleteDocument, document: document(by: doctor), allowed: false, rule: "emergency.consultation-only"),
        Case(
            name: "an emergency does not read the trace, even the médecin traitant's",
            actor: pro(attending, mode: .bris_de_glace), action: .readTrace, allowed: false, rule: "emergency.consultation-only"),
        Case(
            name: "bris de glace reads content", actor: pro(stranger, mode: .bris_de_glace), action: .readDocumentContent,
            document: document(), allowed: true, rule: "emergency.bris-de-glace/matrix.class-allowed"),

        // The médecin traitant is a doctor, acting as one.
        Case(
            name: "an optician named médecin traitant gets no full rights", actor: pro(optician, "28"), action: .readDocumentContent,
            document: document(.ordonnanceSoins, masked: true),
            settings: {
                var s = settings; s.attendingDoctor = optician.value; return s
            }(), allowed: false, rule: "document.masked"),
        Case(
            name: "the médecin traitant presenting another profession gets no full rights", actor: pro(attending, "21"),
            action: .readDocumentContent, document: document(masked: true), allowed: false, rule: "professional.not-authorized"),
        Case(
            name: "the médecin traitant as a doctor reads masked documents", actor: pro(attending), action: .readDocumentContent,
            document: document(masked: true), allowed: true, rule: "professional.medecin-traitant"),
        Case(
            name: "an administrator of any profession has full rights", actor: pro(administrator, "21"),
            action: .readDocumentContent, document: document(.compteRendu, masked: true), allowed: true,
            rule: "professional.administrator"),

        // A closed dossier is its holder's alone (R1111-47).
        Case(
            name: "closed: the médecin traitant reads nothing", actor: pro(attending), action: .readDossier, closed: true,
            allowed: false, rule: "dossier.closed-holder-only"),
        Case(
            name: "closed: an authorised doctor reads nothing", actor: pro(doctor), action: .readDocumentContent, document: document(),
            closed: true, allowed: false, rule: "dossier.closed-holder-only"),
        Case(
            name: "closed: no bris de glace", actor: pro(stranger, mode: .bris_de_glace), action: .listDocuments, closed: true,
            allowed: false, rule: "dossier.closed-holder-only"),
        Case(
            name: "closed: a stranger learns nothing of it (the refusal of an open one)", actor: pro(stranger),
            action: .listDocuments, closed: true, allowed: false, rule: "professional.not-authorized"),
        Case(
            name: "closed: a blocked professional, the refusal of an open one", actor: pro(blockedDoctor),
            action: .readDossier, closed: true, allowed: false, rule: "professional.blocked"),
        Case(
            name: "closed: the patient reads", actor: patient, action: .readDocumentContent, document: document(), closed: true,
            allowed: true, rule: "patient.own-dossier"),
        Case(
            name: "closed: the representative reads", actor: representative, action: .listDocuments, closed: true, allowed: true,
            rule: "representative.of-patient"),
        Case(
            name: "closed: the patient writes nothing", actor: patient, action: .addDocument, closed: true, allowed: false,
            rule: "dossier.closed-read-only"),
    ]

    @Test(arguments: cases)
    func decision(_ testCase: Case) {
        let policy = AccessPolicy(matrix: Self.matrix)
        let decision = policy.decide(
            actor: testCase.actor, action: testCase.action,
            dossier: DossierFacts(owner: Self.owner, settings: testCase.settings, isClosed: testCase.closed),
            document: testCase.document, now: Self.now)
        #expect(decision.isAllowed == testCase.allowed)
        #expect(decision.rule == testCase.rule)
        #expect((decision.matrixVersion != nil) == testCase.rule.contains("matrix."), "the matrix version is recorded when it decides")
    }

    @Test func documentActionsWithoutADocumentAreRefused() {
        let decision = AccessPolicy(matrix: Self.matrix).decide(
            actor: Self.patient, action: .readDocumentContent, dossier: DossierFacts(owner: Self.owner), now: Self.now)
        #expect(decision == .deny("document.unknown"))
    }

    @Test func theShippedMatrixMeetsTheBrief() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/CoffreServer/Resources/habilitations-default.json")
        let matrix = try HabilitationMatrix.load(json: Array(Data(contentsOf: url)))
        for documentClass in DocumentClass.allCases {
            #expect(matrix.permits(profession: .medecin, specialty: nil, documentClass: documentClass, typeCode: nil).allowed)
        }
        for documentClass in [DocumentClass.ordonnanceSoins, .biologie] {
            #expect(matrix.permits(profession: .pharmacien, specialty: nil, documentClass: documentClass, typeCode: nil).allowed)
        }
        for profession in ["28", "80"] {
            for documentClass in [DocumentClass.biologie, .compteRendu] {
                #expect(
                    !matrix.permits(profession: Profession(profession)!, specialty: nil, documentClass: documentClass, typeCode: nil)
                        .allowed)
            }
        }
    }

    @Test func invalidMatricesAreRefused() {
        #expect(throws: HabilitationMatrix.Invalid.self) { try HabilitationMatrix.load(json: Array("{}".utf8)) }
        #expect(throws: HabilitationMatrix.Invalid.self) {
            try HabilitationMatrix.load(json: Array(#"{"version":"x","rows":[{"profession":"10","classes":["NOPE"]}]}"#.utf8))
        }
        #expect(throws: HabilitationMatrix.Invalid.self) {
            try HabilitationMatrix.load(
                json: Array(#"{"version":"x","rows":[{"profession":"10","classes":["*"]},{"profession":"10","classes":[]}]}"#.utf8))
        }
    }

    @Test func finessNumbers() {
        #expect(FINESS(Self.finess) != nil)
        #expect(FINESS("750712185") == nil)
        #expect(FINESS("75071218") == nil)
    }
}
