import CoffreDomain
import Foundation
import Testing

/// The pipeline's pure step as tables: for each operation, caller and dossier, the decision, the
/// refusal, the changes, the trace entry and the notices the plan draws up.
@Suite struct OperationPlannerTests {
    typealias P = AccessPolicyTests
    static let now = P.now
    static let day = P.day
    static let dossierID = DossierID(unchecked: "0123456789abcdef0123456789abcdef")
    static let labID = DocumentID(unchecked: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    static let planner = OperationPlanner(policy: AccessPolicy(matrix: P.matrix), retention: .legal)

    static func dossier(_ settings: DossierSettings = P.settings, closed: Bool = false, createdDaysAgo: Int64 = 100) -> DossierFacts {
        var lifecycle = DossierLifecycle(createdAt: now - createdDaysAgo * day)
        if closed { lifecycle = try! lifecycle.closing(at: now - day, reason: .patientRequest, deletionRequested: false) }
        return DossierFacts(owner: P.owner, settings: settings, lifecycle: lifecycle)
    }

    static func facts(
        _ dossier: DossierFacts? = dossier(), document: DocumentFacts? = nil, metadata: NewDocument? = nil,
        documents: [(id: DocumentID, facts: DocumentFacts)] = []
    ) -> OperationFacts {
        OperationFacts(
            owner: P.owner, dossier: dossier, dossierID: dossier == nil ? nil : dossierID, document: document, documentMetadata: metadata,
            documents: documents, now: now)
    }

    static func plan(_ operation: DossierOperation, by actor: Actor, _ facts: OperationFacts = facts()) -> OperationPlan {
        planner.plan(operation, by: .person(actor), facts: facts)
    }

    // MARK: Existence never leaks

    struct ExistenceCase: Sendable, CustomTestStringConvertible {
        var name: String
        var actor: Actor
        var operation: DossierOperation
        var testDescription: String { name }
    }

    static let strangers: [ExistenceCase] = [
        .init(name: "another patient reads", actor: P.otherPatient, operation: .readDossier),
        .init(name: "another patient lists", actor: P.otherPatient, operation: .listDocuments),
        .init(name: "an unauthorised professional reads", actor: P.pro(P.stranger), operation: .readDossier),
        .init(name: "an unauthorised professional releases", actor: P.pro(P.stranger), operation: .releaseDocument(labID)),
        .init(name: "an unauthorised professional reads the trace", actor: P.pro(P.stranger), operation: .readTrace),
        .init(name: "another patient closes", actor: P.otherPatient, operation: .close(death: false, deletionRequested: false)),
    ]

    /// Whoever may not act on a dossier gets the same refusal, with the same rule, whether the
    /// patient has a dossier or not (the dossier facts used are a fresh, empty dossier's).
    @Test(arguments: strangers)
    func aRefusalIsTheSameWithOrWithoutADossier(_ testCase: ExistenceCase) {
        let empty = DossierFacts(owner: P.owner)
        let with = Self.plan(testCase.operation, by: testCase.actor, Self.facts(empty))
        let without = Self.plan(testCase.operation, by: testCase.actor, Self.facts(nil))
        #expect(with.refusal == without.refusal)
        #expect(without.refusal?.code == "access_denied")
        #expect(with.detail == without.detail)
        #expect(without.changes.isEmpty && without.notices.isEmpty)
        #expect(without.outcome == .denied)
    }

    @Test func onlyThoseWhoCouldActLearnThereIsNoDossier() {
        let plan = Self.plan(.readDossier, by: P.patient, Self.facts(nil))
        #expect(plan.refusal == .dossierNotFound)
        #expect(plan.outcome == .refused)
        #expect(plan.detail.actorID == P.owner.value && plan.detail.errorCode == "dossier_not_found")
        #expect(Self.plan(.createDossier, by: P.patient, Self.facts(nil)).changes == [.create])
        #expect(Self.plan(.createDossier, by: P.patient).refusal == .dossierExists)
    }

    // MARK: Settings

    struct SettingsCase: Sendable, CustomTestStringConvertible {
        var name: String
        var change: SettingsChange
        var refused: String?
        var check: @Sendable (DossierSettings) -> Bool
        var testDescription: String { name }
    }

    static let settingsCases: [SettingsCase] = [
        .init(
            name: "naming the médecin traitant lifts their block", change: .attendingDoctor(P.blockedDoctor, profession: .medecin),
            refused: nil
        ) {
            $0.attendingDoctor == P.blockedDoctor.value && !$0.blocked.contains(P.blockedDoctor.value)
        },
        .init(
            name: "the médecin traitant is a doctor", change: .attendingDoctor(P.optician, profession: Profession("28")!),
            refused: "invalid: profession 28 cannot be named médecin traitant"
        ) { _ in true },
        .init(
            name: "the médecin traitant's profession must be said", change: .attendingDoctor(P.doctor, profession: nil),
            refused: "invalid: say the médecin traitant's profession"
        ) { _ in true },
        .init(
            name: "only an authorised professional is named administrator",
            change: .accessList(.administrators, member: .professional(P.stranger), add: true),
            refused: "invalid: only a professional you have already authorised"
        ) { _ in true },
        .init(
            name: "an authorised professional is named administrator",
            change: .accessList(.administrators, member: .professional(P.pharmacist), add: true), refused: nil
        ) { $0.administrators.contains(P.pharmacist.value) },
        .init(
            name: "withdrawing an administrator's authorisation withdraws both",
            change: .accessList(.authorized, member: .professional(P.administrator), add: false), refused: nil
        ) { !$0.administrators.contains(P.administrator.value) && !$0.authorized.contains(P.administrator.value) },
        .init(
            name: "the médecin traitant cannot be blocked", change: .accessList(.blocked, member: .professional(P.attending), add: true),
            refused: "settings.full-rights-cannot-be-blocked"
        ) { _ in true },
        .init(
            name: "an administrator cannot be blocked",
            change: .accessList(.blocked, member: .professional(P.administrator), add: true),
            refused: "settings.full-rights-cannot-be-blocked"
        ) { _ in true },
        .init(
            name: "naming an administrator lifts their block",
            change: .accessList(.administrators, member: .professional(P.blockedDoctor), add: true), refused: nil
        ) { $0.administrators.contains(P.blockedDoctor.value) && !$0.blocked.contains(P.blockedDoctor.value) },
        .init(
            name: "an establishment is blocked by its FINESS",
            change: .accessList(.blocked, member: .organization(FINESS("310000005")!), add: true), refused: nil
        ) { $0.blockedOrganizations.contains("310000005") && $0.blocked == P.settings.blocked },
        .init(
            name: "unblocking", change: .accessList(.blocked, member: .professional(P.blockedDoctor), add: false), refused: nil
        ) { $0.blocked.isEmpty },
        .init(name: "revoking", change: .accessList(.authorized, member: .professional(P.doctor), add: false), refused: nil) {
            !$0.authorized.contains(P.doctor.value)
        },
        .init(name: "preferences, only those sent", change: .preferences(PreferencesChange(maskNewDocuments: true)), refused: nil) {
            $0.maskNewDocuments && !$0.notifyEveryAccess && $0.notifyNewDocuments
        },
        .init(name: "emergency switches", change: .emergency(EmergencyChange(brisDeGlace: false, masked: true)), refused: nil) {
            $0.refuseBrisDeGlace && !$0.refuseCentre15 && $0.showMaskedInEmergency
        },
    ]

    @Test(arguments: settingsCases)
    func settingsChangesFollowTheRules(_ testCase: SettingsCase) throws {
        let operation: DossierOperation =
            switch testCase.change {
            case .attendingDoctor(let rpps, let profession): .setAttendingDoctor(rpps, profession: profession)
            case .preferences(let change): .setPreferences(change)
            case .emergency(let change): .setEmergency(change)
            case .accessList(let list, let member, let add): .changeAccessList(list, member: member, add: add)
            case .professionalSeen: .readDossier
            }
        let plan = Self.plan(operation, by: P.patient)
        #expect(plan.action == .manageDossier)
        if let words = testCase.refused, words.hasPrefix("invalid: ") {
            guard case .invalidRequest(let text) = plan.refusal else {
                Issue.record("\(testCase.name): \(String(describing: plan.refusal))")
                return
            }
            #expect(text.contains(words.dropFirst("invalid: ".count)), "\(text)")
            #expect(plan.changes.isEmpty && plan.detail.errorCode == "invalid_metadata")
        } else if let rule = testCase.refused {
            #expect(
                plan.refusal
                    == .accessDenied(
                        rule: rule, explanation: plan.refusal.flatMap { if case .accessDenied(_, let e) = $0 { e } else { nil } }))
            #expect(plan.outcome == .denied && plan.changes.isEmpty && plan.detail.rule == rule)
            #expect(throws: Refusal.self) { try testCase.change.applied(to: P.settings) }
        } else {
            #expect(plan.refusal == nil)
            #expect(plan.changes == [.settings(testCase.change)])
            #expect(testCase.check(try testCase.change.applied(to: P.settings)))
        }
    }

    // MARK: Lifecycle

    @Test func lifecycleOperations() {
        let closing = Self.plan(.close(death: true, deletionRequested: true), by: P.pro(P.attending))
        #expect(closing.decision.isAllowed && closing.refusal?.code == "invalid_metadata")
        // Refused for its form after an allowed decision: only the access itself is recorded.
        #expect(closing.outcome == .refused && closing.changes == [.settings(.professionalSeen(P.attending))])

        #expect(
            Self.plan(.close(death: false, deletionRequested: true), by: P.patient).changes == [
                .lifecycle(.close(reason: .patientRequest, deletionRequested: true))
            ])
        let twice = Self.plan(.close(death: false, deletionRequested: false), by: P.patient, Self.facts(Self.dossier(closed: true)))
        #expect(twice.refusal?.code == "illegal_transition")
        #expect(Self.plan(.reopen, by: P.patient, Self.facts(Self.dossier(closed: true))).changes == [.lifecycle(.reopen)])
        #expect(Self.plan(.oppose, by: P.patient, Self.facts(Self.dossier(createdDaysAgo: 2))).changes == [.destroy])
        #expect(Self.plan(.oppose, by: P.patient).refusal?.code == "illegal_transition")
    }

    @Test func operatorsAndPeopleHaveTheirOwnOperations() {
        let hold = Self.planner.plan(.hold(reason: "enquête"), by: .operator(uid: 0), facts: Self.facts())
        #expect(hold.decision == .allow("operator") && hold.changes == [.lifecycle(.hold(reason: "enquête"))])
        #expect(hold.detail.actorRole == "operator" && hold.detail.actorID == "uid 0" && hold.action == .holdDossier)
        #expect(Self.planner.plan(.hold(reason: " "), by: .operator(uid: 0), facts: Self.facts()).refusal?.code == "illegal_transition")
        #expect(
            Self.planner.plan(.recordDeath, by: .operator(uid: 7), facts: Self.facts()).changes == [
                .lifecycle(.close(reason: .death, deletionRequested: false))
            ])
        #expect(Self.plan(.hold(reason: "x"), by: P.patient).refusal == .accessDenied(rule: "operator-only"))
        #expect(Self.planner.plan(.readDossier, by: .operator(uid: 0), facts: Self.facts()).refusal?.code == "access_denied")
        #expect(Self.planner.plan(.releaseHold, by: .retentionJob(uid: 9), facts: Self.facts()).refusal?.code == "access_denied")
    }

    /// Vault operations: operators take every one, the retention job its own two, people none;
    /// each entry names its caller.
    @Test func vaultOperationsBelongToOperatorsAndTheRetentionJobToItsOwn() {
        let operations: [VaultOperation] = [
            .reloadKeys, .rotateKeys, .retireKey(1), .rekeyDossier(reencrypt: false), .readKeys, .readRetentionDue,
            .runRetention(dryRun: false), .verify, .readStatus, .setClock,
        ]
        for operation in operations {
            let byOperator = Self.planner.plan(operation, by: .operator(uid: 5))
            #expect(byOperator.refusal == nil && byOperator.detail.actorID == "uid 5" && byOperator.action.isOperators)
            let byJob = Self.planner.plan(operation, by: .retentionJob(uid: 6))
            #expect((byJob.refusal == nil) == operation.isRetentionJobs, "\(operation)")
            #expect(byJob.detail.actorRole == "retention")
            #expect(Self.planner.plan(operation, by: .person(P.patient)).refusal == .accessDenied(rule: "operator-only"))
        }
        #expect(Self.planner.plan(.runRetention(dryRun: true), by: .retentionJob(uid: 6)).detail.mode == "dry-run")
        #expect([VaultOperation.readKeys, .readRetentionDue, .readStatus].allSatisfy { $0.action.onlyReads })
        #expect(![VaultOperation.runRetention(dryRun: true), .verify, .setClock].contains { $0.action.onlyReads })
    }

    /// The retention job's verdict comes from the sealed lifecycle alone; the index's clear
    /// columns can finish a purge begun, never start one.
    @Test func theRetentionVerdictComesFromTheSealedLifecycle() throws {
        let created = Self.now - 12 * 365 * Self.day
        let closed = try DossierLifecycle(createdAt: created).closing(
            at: created + Self.day, reason: .patientRequest, deletionRequested: false)
        let deletion = try DossierLifecycle(createdAt: created).closing(
            at: Self.now - 400 * Self.day, reason: .patientRequest, deletionRequested: true)
        let held = try closed.holding(reason: "enquête")
        let recent = try DossierLifecycle(createdAt: Self.now - Self.day).closing(
            at: Self.now, reason: .patientRequest, deletionRequested: false)
        let cases: [(PurgeFacts, PurgeVerdict)] = [
            (PurgeFacts(purging: false, keyDestroyed: false, lifecycle: closed, now: Self.now), .purge(reason: "retention-over")),
            (PurgeFacts(purging: false, keyDestroyed: false, lifecycle: deletion, now: Self.now), .purge(reason: "deletion-request")),
            (PurgeFacts(purging: false, keyDestroyed: false, lifecycle: held, now: Self.now), .held),
            (
                PurgeFacts(purging: false, keyDestroyed: false, lifecycle: recent, now: Self.now),
                .failed(reason: "the index's purge date disagrees with the dossier's sealed record")
            ),
            (
                PurgeFacts(purging: false, keyDestroyed: false, lifecycle: nil, unreadable: "damaged", now: Self.now),
                .failed(reason: "damaged")
            ),
            (PurgeFacts(purging: true, keyDestroyed: true, lifecycle: nil, now: Self.now), .purge(reason: "resume-interrupted-purge")),
            (
                PurgeFacts(purging: true, keyDestroyed: false, lifecycle: nil, now: Self.now),
                .failed(reason: "the index says purging but the dossier key is still there; check the index")
            ),
        ]
        for (facts, verdict) in cases { #expect(Self.planner.retentionVerdict(facts) == verdict) }
        let entry = OperationPlanner.purgeEntry(reason: "retention-over", by: .retentionJob(uid: 6))
        #expect(entry.anonymous == entry && entry.actorID == "uid 6" && entry.rule == "retention-over")
    }

    // MARK: Documents

    @Test func newDocumentsFollowTheDossiersPreferencesAndOnlyProfessionalsHide() throws {
        var settings = P.settings
        settings.maskNewDocuments = true
        let upload = DocumentUpload(documentClass: .biologie, title: "glycémie")
        let byPatient = Self.plan(.addDocument(upload), by: P.patient, Self.facts(Self.dossier(settings)))
        guard case .storeDocument(let document, nil) = byPatient.changes.first else {
            Issue.record("no document stored: \(byPatient.changes)")
            return
        }
        #expect(document.masked && document.author == DocumentAuthor(role: .patient, id: P.owner.value, profession: nil))
        #expect(byPatient.notices.isEmpty)

        var hidden = upload
        hidden.hiddenFrom = (patient: true, representatives: false)
        #expect(Self.plan(.addDocument(hidden), by: P.patient).refusal?.code == "invalid_metadata")
        #expect(Self.plan(.addDocument(DocumentUpload()), by: P.pro(P.doctor)).refusal == .classMissing)
        let byDoctor = Self.plan(.addDocument(hidden), by: P.pro(P.doctor))
        #expect(byDoctor.refusal == nil && byDoctor.notices.allSatisfy { $0.kind != .documentAdded })
    }

    @Test func aNewVersionCarriesOverWhatItDoesNotSay() {
        var old = NewDocument(
            documentClass: .compteRendu, title: "annonce",
            author: DocumentAuthor(role: .professional, id: P.doctor.value, profession: "10"),
            hiddenFromPatient: true)
        old.masked = true
        let stillHidden = P.document(.compteRendu, hiddenFromPatient: true, ageDays: 3)
        let released = P.document(.compteRendu, hiddenFromPatient: true, released: true, ageDays: 3)
        func version(_ facts: DocumentFacts) -> NewDocument? {
            let plan = Self.plan(
                .replaceDocument(Self.labID, DocumentUpload()), by: P.pro(P.doctor), Self.facts(document: facts, metadata: old))
            guard case .storeDocument(let document, Self.labID) = plan.changes.last else { return nil }
            return document
        }
        let hidden = version(stillHidden)
        #expect(hidden?.hiddenFromPatient == true && hidden?.masked == true && hidden?.title == "annonce")
        #expect(hidden?.hiddenSince == stillHidden.uploadedAt)
        let visible = version(released)
        #expect(visible?.hiddenFromPatient == false && visible?.hiddenSince == nil)
    }

    @Test func aDocumentChangeNamesTheDocumentAndAppliesToEveryVersion() throws {
        let delete = Self.plan(.deleteDocument(Self.labID), by: P.pro(P.doctor), Self.facts(document: P.document()))
        #expect(delete.changes.last == .document(Self.labID, .delete) && delete.detail.documentID == Self.labID.value)
        var old = DocumentVersionState(isNamed: false, status: .superseded, masked: false, hiddenFromPatient: false, releasedAt: nil)
        let named = DocumentVersionState(isNamed: true, status: .current, masked: false, hiddenFromPatient: true, releasedAt: nil)
        try DocumentChange.delete.apply(to: &old, named: named)
        #expect(old.status == .deleted)
        var superseded = named
        superseded.status = .superseded
        #expect(throws: Refusal.self) { try DocumentChange.delete.apply(to: &old, named: superseded) }
        var notHidden = named
        notHidden.hiddenFromPatient = false
        #expect(throws: Refusal.self) { try DocumentChange.release(at: 1).apply(to: &notHidden, named: notHidden) }
        // What the facts already show refused is refused in the plan: one refused entry.
        let older = Self.facts(
            document: P.document(by: P.doctor, status: .superseded),
            metadata: NewDocument(
                documentClass: .biologie, author: DocumentAuthor(role: .professional, id: P.doctor.value, profession: "10")))
        #expect(Self.plan(.deleteDocument(Self.labID), by: P.pro(P.doctor), older).refusal?.code == "document_conflict")
        #expect(
            Self.plan(.replaceDocument(Self.labID, DocumentUpload()), by: P.pro(P.doctor), older).refusal?.code
                == "document_conflict")
        let visible = Self.plan(.releaseDocument(Self.labID), by: P.pro(P.doctor), Self.facts(document: P.document(by: P.doctor)))
        #expect(visible.refusal?.code == "document_conflict" && visible.outcome == .refused)
        let unknown = Self.plan(.maskDocument(Self.labID, masked: true), by: P.patient)
        #expect(unknown.refusal == .documentNotFound() && unknown.decision.isAllowed)
        let deleted = Self.plan(
            .readContent(Self.labID), by: P.pro(P.doctor), Self.facts(document: P.document(by: P.doctor, status: .deleted)))
        #expect(deleted.refusal == .documentNotFound("this document was deleted"))
    }

    // MARK: Notices

    @Test func accessNotices() {
        var settings = P.settings
        settings.professionalsSeen = [P.doctor.value]
        let seen = Self.plan(.readDossier, by: P.pro(P.doctor), Self.facts(Self.dossier(settings)))
        #expect(seen.notices.isEmpty && seen.changes.isEmpty)
        let first = Self.plan(.readDossier, by: P.pro(P.doctor))
        #expect(first.changes == [.settings(.professionalSeen(P.doctor))])
        #expect(first.notices.map(\.kind) == [.professionalAccess])
        #expect(first.notices.first?.identity == .derived("first-access/\(Self.dossierID.value)/\(P.doctor.value)"))
        settings.notifyEveryAccess = true
        #expect(Self.plan(.readDossier, by: P.pro(P.doctor), Self.facts(Self.dossier(settings))).notices.map(\.identity) == [.fresh])
        let emergency = Self.plan(.readDossier, by: P.pro(P.stranger, mode: .bris_de_glace))
        #expect(emergency.notices.map(\.recipient) == [.patient, .medecinTraitant, .patient])
        #expect(emergency.notices.first?.message.contains("Motif : urgence.") == true)
        let denied = Self.plan(.readDossier, by: P.pro(P.stranger))
        #expect(denied.notices.isEmpty && denied.changes.isEmpty)
    }

    @Test func aDocumentHiddenFromRepresentativesIsThePatientsNewsAlone() {
        var upload = DocumentUpload(documentClass: .compteRendu)
        let plain = Self.plan(.addDocument(upload), by: P.pro(P.doctor)).notices
        #expect(plain.allSatisfy { !$0.hiddenFromRepresentatives })
        #expect(plain.first { $0.kind == .documentAdded }?.subject == .newDocument)
        upload.hiddenFrom = (patient: false, representatives: true)
        let notices = Self.plan(.addDocument(upload), by: P.pro(P.doctor)).notices
        // The new-document notice and the access notices committed with it: the patient's,
        // naming the professional; never shown to the representatives who read the same outbox.
        #expect(notices.map(\.kind).sorted { $0.rawValue < $1.rawValue } == [.documentAdded, .professionalAccess])
        #expect(notices.allSatisfy { $0.hiddenFromRepresentatives && $0.actor?.actorID == P.doctor.value })
    }

    @Test func aReleaseAndADeletionByAProfessionalAreNoticed() {
        func facts(_ document: DocumentFacts) -> OperationFacts { Self.facts(document: document) }
        let id = Self.labID
        let hidden = P.document(hiddenFromPatient: true, hiddenFromRepresentatives: true)
        let released = Self.plan(.releaseDocument(id), by: P.pro(P.doctor), facts(hidden)).notices
        #expect(released.first { $0.kind == .documentReleased }.map { $0.subject == .document(id) && $0.hiddenFromRepresentatives } == true)
        let deleted = Self.plan(.deleteDocument(id), by: P.pro(P.doctor), facts(P.document())).notices
        #expect(deleted.first { $0.kind == .documentDeleted }.map { $0.subject == .document(id) && !$0.hiddenFromRepresentatives } == true)
        // A document the patient has not seen yet: its deletion is no news to them.
        #expect(!Self.plan(.deleteDocument(id), by: P.pro(P.doctor), facts(hidden)).notices.contains { $0.kind == .documentDeleted })
        // The patient deleting their own: nothing to tell them.
        let own = DocumentFacts(documentClass: .autreDocument, authorRole: .patient, authorID: P.owner.value, uploadedAt: Self.now)
        #expect(Self.plan(.deleteDocument(id), by: P.patient, facts(own)).notices.isEmpty)
    }

    @Test func aHiddenDocumentWaitingTwoWeeksIsNoticedOnce() {
        let documents: [(id: DocumentID, facts: DocumentFacts)] = [
            (Self.labID, P.document(hiddenFromPatient: true, ageDays: 15)),
            (DocumentID(unchecked: String(repeating: "b", count: 32)), P.document(hiddenFromPatient: true, ageDays: 13)),
            (DocumentID(unchecked: String(repeating: "c", count: 32)), P.document(hiddenFromPatient: true, released: true, ageDays: 20)),
        ]
        let plan = Self.plan(.readNotifications, by: P.patient, Self.facts(documents: documents))
        #expect(plan.notices.map(\.identity) == [.derived("hidden-document-waiting/" + Self.labID.value)])
        #expect(plan.notices.first?.message.contains("Un professionnel de santé souhaite vous en parler") == true)
        let byDoctor = Self.plan(.readNotifications, by: P.pro(P.attending), Self.facts(documents: documents))
        #expect(byDoctor.notices.map(\.kind) == [.professionalAccess])
        let ack = Self.plan(.acknowledgeNotifications(ids: nil), by: P.pro(P.attending))
        #expect(ack.changes.last == .acknowledgeNotices(.medecinTraitant, ids: nil, hiding: nil))
    }

    // MARK: Visibility

    @Test func theTraceHidesWhatItsReaderMayNotSee() {
        let policy = Self.planner.policy
        let hiddenID = DocumentID(unchecked: String(repeating: "d", count: 32))
        let deletedID = DocumentID(unchecked: String(repeating: "e", count: 32))
        let documents: [(id: DocumentID, facts: DocumentFacts)] = [
            (Self.labID, P.document()),
            (hiddenID, P.document(hiddenFromRepresentatives: true)),
            (deletedID, P.document(hiddenFromRepresentatives: true, status: .deleted)),
        ]
        #expect(policy.hiddenInTrace(from: P.representative, documents: documents, in: Self.dossier(), now: Self.now) == [hiddenID])
        #expect(policy.hiddenInTrace(from: P.patient, documents: documents, in: Self.dossier(), now: Self.now).isEmpty)
        #expect(policy.hiddenInTrace(from: P.pro(P.attending), documents: documents, in: Self.dossier(), now: Self.now).isEmpty)
    }

    /// Every refusal the rules can give has an error code the API knows.
    @Test func everyRefusalHasAStableCode() {
        let refusals: [Refusal] = [
            .accessDenied(rule: "r"), .dossierNotFound, .dossierExists, .documentNotFound(), .classMissing,
            .invalidRequest("z"), .conflict("c"),
        ]
        #expect(Set(refusals.map(\.code)).count == refusals.count)
        #expect(Self.plan(.reopen, by: P.patient).refusal?.code == "illegal_transition")
        #expect(refusals.allSatisfy { !$0.explanation.isEmpty })
    }
}

/// Refusals before any decision, counted by kind until written.
@Suite struct RefusalTallyTests {
    @Test func refusalsAreCountedByKindInTheOrderFirstSeen() {
        var tally = RefusalTally()
        let missing = AnonymousRefusal(action: "GET /v1/patients/{ins}/dossier", errorCode: "assertion_missing")
        let unknown = AnonymousRefusal(action: "GET unmatched", errorCode: "route_not_found")
        for _ in 0..<1_000 { tally.add(missing) }
        tally.add(unknown)
        tally.add(missing)
        let drained = tally.drain()
        #expect(drained.map(\.refusal) == [missing, unknown])
        #expect(drained.map(\.count) == [1_001, 1])
        #expect(tally.isEmpty && tally.drain().isEmpty)
        let detail = missing.detail(count: 3)
        #expect(detail.anonymous == detail && detail.count == 3 && detail.errorCode == "assertion_missing")
    }
}
