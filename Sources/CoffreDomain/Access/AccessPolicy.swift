/// Decides who may do what on a dossier, the way the DMP does. Pure: no I/O, no clock reading
/// (the time is passed in), no storage.
///
/// - The patient sees everything in their dossier except documents hidden from them pending an
///   announcement consultation (until released, or a month after upload); a legal
///   representative likewise, and not documents hidden from representatives.
/// - The médecin traitant (a doctor, acting as one) and the administrators the patient names
///   (professionals it authorised) see everything, masked and hidden documents included, and
///   cannot be blocked.
/// - Other professionals need the patient's authorisation (or an emergency mode the patient did
///   not refuse), must not be blocked (in person or through their organisation), never see
///   masked documents unless they wrote them (or in an emergency if the patient allowed it), and
///   see only the classes and types the habilitation matrix gives their profession.
/// - An emergency access consults and never writes; `centre_15` is the SAMU's regulating
///   doctor's (profession 10, from an issuer scoped for that mode).
/// - A closed dossier is its holder's (and representatives') alone until it is purged: no
///   professional reads it, in any mode.
/// - Only a document's author replaces or deletes it; only the patient (or their
///   representative) masks, manages access and preferences; the author or the médecin traitant
///   releases a hidden document early.
public struct AccessPolicy: Sendable {
    public let matrix: HabilitationMatrix
    public let delays: DisclosureDelays

    public init(matrix: HabilitationMatrix, delays: DisclosureDelays = .dmp) {
        self.matrix = matrix
        self.delays = delays
    }

    /// Decides whether `actor` may perform `action` on `dossier` (and `document`, for the
    /// actions that concern one) at time `now` (ms since epoch).
    public func decide(
        actor: Actor, action: DossierAction, dossier: DossierFacts, document: DocumentFacts? = nil, now: Int64
    ) -> AccessDecision {
        if action.isOperators { return .deny("operator-only") }
        if action.concernsDocument && document == nil { return .deny("document.unknown") }
        let decision = personDecision(actor: actor, action: action, dossier: dossier, document: document, now: now)
        // A closed dossier is read-only: whoever may act on it may read, and reopen it.
        if decision.isAllowed && dossier.isClosed && action.writes { return .deny("dossier.closed-read-only") }
        return decision
    }

    private func personDecision(
        actor: Actor, action: DossierAction, dossier: DossierFacts, document: DocumentFacts?, now: Int64
    ) -> AccessDecision {
        switch actor.subject {
        case .patient(let ins):
            guard ins == dossier.owner else { return .deny("patient.other-dossier") }
            guard actor.mode == .normal else { return .deny("patient.emergency-mode") }
            return holderDecision(action, document: document, authorID: ins.value, representative: false, now: now)
        case .representative(let ins, let patient):
            guard patient == dossier.owner else { return .deny("representative.other-dossier") }
            guard actor.mode == .normal else { return .deny("representative.emergency-mode") }
            return holderDecision(action, document: document, authorID: ins.value, representative: true, now: now)
        case .professional(let rpps, let profession, let specialty, let organization):
            let decision = professionalDecision(
                action, actor: actor, rpps: rpps.value, profession: profession, specialty: specialty,
                organization: organization, dossier: dossier, document: document)
            // Once closed, the dossier is kept for its holder alone: no professional, in any
            // mode. Said only to one who could act on it open, so that a refusal still tells a
            // stranger nothing of whether the patient has a dossier.
            return decision.isAllowed && dossier.isClosed ? .deny("dossier.closed-holder-only") : decision
        }
    }

    // MARK: The patient and their representative

    private func holderDecision(
        _ action: DossierAction, document: DocumentFacts?, authorID: String, representative: Bool, now: Int64
    ) -> AccessDecision {
        let base = representative ? "representative.of-patient" : "patient.own-dossier"
        guard let document else {
            if representative && action == .createDossier { return .deny("representative.cannot-create") }
            if action == .closeDossierOnDeath { return .deny("holder.cannot-record-death") }
            return .allow(base)
        }
        let isAuthor = document.authorRole != .professional && document.authorID == authorID
        // Authorship decides replace and delete whatever the version's state (the store then
        // refuses a version that is not current, as it does for a professional author).
        if action == .replaceDocument || action == .deleteDocument {
            return isAuthor ? .allow("document.author") : .deny("document.not-author")
        }
        if document.status == .deleted && action != .readDocumentMetadata { return .deny("document.deleted") }
        if document.isHiddenFromPatient(at: now, delays: delays) { return .deny("document.hidden-from-patient") }
        if representative && document.hiddenFromRepresentatives { return .deny("document.hidden-from-representatives") }
        switch action {
        case .readDocumentMetadata, .readDocumentContent: return .allow(base)
        case .maskDocument: return .allow(representative ? "representative.masks" : "patient.masks")
        case .replaceDocument, .deleteDocument: return isAuthor ? .allow("document.author") : .deny("document.not-author")
        case .releaseDocument: return .deny("document.release-by-professional")
        default: return .allow(base)
        }
    }

    // MARK: Professionals

    private func professionalDecision(
        _ action: DossierAction, actor: Actor, rpps: String, profession: Profession, specialty: String?,
        organization: String?, dossier: DossierFacts, document: DocumentFacts?
    ) -> AccessDecision {
        let settings = dossier.settings
        switch action {
        case .createDossier: return .deny("professional.cannot-create")
        case .manageDossier, .maskDocument, .reopenDossier, .opposeDossier, .closeDossier, .readAccessSettings:
            return .deny("professional.patient-only")
        default: break
        }
        switch actor.mode {
        case .normal: break
        case .bris_de_glace, .centre_15:
            // Emergency access is consultation (L1111-17): it never writes, nor reads the
            // patient's trace or notices.
            guard action.consultsContent else { return .deny("emergency.consultation-only") }
            // Centre 15 is the SAMU's regulating doctor's: the mode is set only by an issuer
            // scoped for it, and only for a doctor.
            if actor.mode == .centre_15 && profession != .medecin { return .deny("emergency.centre-15-regulating-doctor-only") }
        }
        let fullRights = settings.hasFullRights(rpps, as: profession)
        if action == .closeDossierOnDeath {
            // Recording a death is the médecin traitant's (or an administrator's) act.
            return fullRights ? .allow("professional.closes-on-death") : .deny("professional.medecin-traitant-only")
        }
        let isAuthor = document.map { $0.authorRole == .professional && $0.authorID == rpps } ?? false

        // The médecin traitant and administrators: everything, whatever the blocks.
        if fullRights {
            let rule = settings.attendingDoctor == rpps ? "professional.medecin-traitant" : "professional.administrator"
            guard let document else { return .allow(rule) }
            return fullRightsDocumentDecision(action, document: document, isAuthor: isAuthor, rule: rule)
        }
        if action == .readTrace || action == .readNotifications { return .deny("professional.patient-or-medecin-traitant-only") }
        if settings.blocked.contains(rpps) { return .deny("professional.blocked") }
        if let organization, settings.blockedOrganizations.contains(organization) { return .deny("professional.organization-blocked") }

        let access: String
        switch actor.mode {
        case .normal:
            guard settings.authorized.contains(rpps) else { return .deny("professional.not-authorized") }
            access = "professional.authorized"
        case .bris_de_glace:
            guard !settings.refuseBrisDeGlace else { return .deny("emergency.bris-de-glace-refused") }
            access = "emergency.bris-de-glace"
        case .centre_15:
            guard !settings.refuseCentre15 else { return .deny("emergency.centre-15-refused") }
            access = "emergency.centre-15"
        }
        guard let document else { return .allow(access) }

        switch action {
        case .replaceDocument, .deleteDocument, .releaseDocument:
            return isAuthor ? .allow("document.author") : .deny("document.not-author")
        default:
            break
        }
        if isAuthor { return .allow("document.author") }
        if document.status == .deleted { return .deny("document.deleted") }
        if document.masked && !(actor.mode != .normal && settings.showMaskedInEmergency) { return .deny("document.masked") }
        let verdict = matrix.permits(
            profession: profession, specialty: specialty, documentClass: document.documentClass, typeCode: document.typeCode)
        return AccessDecision(isAllowed: verdict.allowed, rule: access + "/" + verdict.rule, matrixVersion: matrix.version)
    }

    /// Whether `actor` may see `document` in a listing, a count or a trace: listings show only
    /// what may be read (the listing itself is the traced access).
    public func canSee(_ actor: Actor, _ document: DocumentFacts, in dossier: DossierFacts, now: Int64) -> Bool {
        decide(actor: actor, action: .readDocumentMetadata, dossier: dossier, document: document, now: now).isAllowed
    }

    /// The documents whose trace entries `actor` must not see: the trace must not reveal a
    /// document its reader may not see (one hidden from the patient pending an announcement,
    /// or from representatives). The médecin traitant and professionals see every entry they
    /// may read the trace for; a deleted document is no secret.
    public func hiddenInTrace(
        from actor: Actor, documents: [(id: DocumentID, facts: DocumentFacts)], in dossier: DossierFacts, now: Int64
    ) -> Set<DocumentID> {
        guard actor.role != .professional else { return [] }
        return Set(
            documents.filter { $0.facts.status != .deleted && !canSee(actor, $0.facts, in: dossier, now: now) }.map(\.id))
    }

    /// What `actor` must not learn of a minor's confidential care (L1111-5): for a
    /// representative, who gave it; nil for anyone else.
    public func confidentialCare(hiddenFrom actor: Actor, documents: [(id: DocumentID, facts: DocumentFacts)]) -> ConfidentialCare? {
        guard actor.role == .representative else { return nil }
        return ConfidentialCare(
            authors: Set(
                documents.filter { $0.facts.hiddenFromRepresentatives && $0.facts.authorRole == .professional }.map(\.facts.authorID)))
    }

    private func fullRightsDocumentDecision(
        _ action: DossierAction, document: DocumentFacts, isAuthor: Bool, rule: String
    ) -> AccessDecision {
        switch action {
        case .replaceDocument, .deleteDocument:
            return isAuthor ? .allow("document.author") : .deny("document.not-author")
        case .releaseDocument:
            return .allow(isAuthor ? "document.author" : rule)
        default:
            return document.status == .deleted ? .deny("document.deleted") : .allow(rule)
        }
    }
}

/// What a representative must not learn of a minor's confidential care (L1111-5): the
/// professionals who gave it. Their trace entries are shown without who acted, and the
/// patient's notices about them (or marked hidden from representatives) are not shown.
public struct ConfidentialCare: Sendable, Equatable {
    /// RPPS numbers of the authors of documents hidden from representatives.
    public var authors: Set<String>

    public init(authors: Set<String>) { self.authors = authors }

    /// Whether a notice is the patient's alone.
    public func hides(noticeHiddenFromRepresentatives hidden: Bool, actorID: String?) -> Bool {
        hidden || (actorID.map(authors.contains) ?? false)
    }
}
