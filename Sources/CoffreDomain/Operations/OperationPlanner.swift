/// Plans an operation on a dossier: decides with the access policy, then draws up the changes,
/// the trace entry and the notices. Pure: the facts and the time come in, a plan goes out.
///
/// Order of the checks, the same for every operation:
/// 1. who may call it at all (operators' operations are theirs alone);
/// 2. the access rules, on the dossier as it is, or on an empty dossier of this patient when
///    there is none: whoever may not act on a dossier gets the same refusal whether it exists
///    or not, so a refusal never tells a stranger that a patient has a dossier;
/// 3. whether the dossier and the named document exist;
/// 4. what the operation itself requires (a legal transition, a well-formed upload).
public struct OperationPlanner: Sendable {
    public let policy: AccessPolicy
    public let retention: RetentionRules

    public init(policy: AccessPolicy, retention: RetentionRules) {
        self.policy = policy
        self.retention = retention
    }

    /// The plan for `operation` asked by `caller`, given `facts`.
    public func plan(_ operation: DossierOperation, by caller: Caller, facts: OperationFacts) -> OperationPlan {
        var detail = TraceDetail(caller: caller)
        detail.documentID = operation.documentID?.value
        var plan = OperationPlan(
            action: operation.action, decision: .deny("-"), refusal: nil, detail: detail, changes: [], notices: [],
            assertion: caller.assertion)
        plan.decision = decide(operation, by: caller, facts: facts)
        plan.detail.rule = plan.decision.rule
        plan.detail.matrixVersion = plan.decision.matrixVersion
        do throws(Refusal) {
            guard plan.decision.isAllowed else { throw .accessDenied(rule: plan.decision.rule) }
            guard let dossier = facts.dossier else {
                guard operation == .createDossier else { throw .dossierNotFound }
                plan.changes = [.create]
                return plan
            }
            guard operation != .createDossier else { throw .dossierExists }
            if operation.documentID != nil && facts.document == nil { throw .documentNotFound() }
            if case .person(let actor) = caller {
                // Storing a document hidden from representatives: its access notices name nobody.
                let hidden: Bool =
                    switch operation {
                    case .addDocument(let upload), .replaceDocument(_, let upload): upload.hiddenFrom?.representatives == true
                    default: false
                    }
                plan.notices = NoticePolicy.accessed(by: actor, dossier: dossier, id: facts.dossierID, confidential: hidden)
                if case .professional(let rpps, _, _, _) = actor.subject, !dossier.settings.professionalsSeen.contains(rpps.value) {
                    plan.changes.append(.settings(.professionalSeen(rpps)))
                }
            }
            let (changes, notices) = try steps(operation, by: caller, dossier: dossier, facts: facts)
            plan.changes += changes
            plan.notices += notices
        } catch {
            plan.refusal = error
            plan.detail.errorCode = error.code
            // A rule of the change itself refused it (a block of the médecin traitant): it names it.
            if case .accessDenied(let rule, _) = error { plan.detail.rule = rule }
            // A refusal by the rules, or for a dossier that does not exist, changes nothing and
            // owes no notice. An allowed access refused for the dossier's state (a closing of a
            // closed dossier) still owes its access notices: the professional reached the
            // dossier. The operation's own changes and notices were never added.
            if !plan.decision.isAllowed || facts.dossier == nil {
                plan.changes = []
                plan.notices = []
            }
        }
        return plan
    }

    /// Who may call the operation, and the access rules' answer.
    private func decide(_ operation: DossierOperation, by caller: Caller, facts: OperationFacts) -> AccessDecision {
        switch caller {
        case .operator:
            return operation.isOperators ? .allow("operator") : .deny("operator.person-operation")
        case .retentionJob:
            return .deny("retention.person-operation")
        case .person(let actor):
            if operation.isOperators { return .deny("operator-only") }
            let dossier = facts.dossier ?? DossierFacts(owner: facts.owner)
            // An unknown document: decide whether the caller may act on the dossier at all
            // (then the answer is that the document does not exist).
            let action = operation.documentID != nil && facts.document == nil ? DossierAction.listDocuments : operation.action
            return policy.decide(actor: actor, action: action, dossier: dossier, document: facts.document, now: facts.now)
        }
    }

    /// The changes and notices of an allowed operation on an existing dossier.
    private func steps(
        _ operation: DossierOperation, by caller: Caller, dossier: DossierFacts, facts: OperationFacts
    ) throws(Refusal) -> ([DossierChange], [Notice]) {
        let now = facts.now
        switch operation {
        case .createDossier, .readDossier, .readAccess, .listDocuments, .readDocument, .readTrace:
            return ([], [])
        case .readContent:
            if facts.document?.status == .deleted { throw .documentNotFound("this document was deleted") }
            return ([], [])
        case .readNotifications:
            guard case .person(let actor) = caller, actor.role != .professional else { return ([], []) }
            return ([], NoticePolicy.waiting(facts.documents, at: now, delays: policy.delays))
        case .acknowledgeNotifications(let ids):
            guard case .person(let actor) = caller else { return ([], []) }
            let hiding = policy.confidentialCare(hiddenFrom: actor, documents: facts.documents)
            return ([.acknowledgeNotices(NoticePolicy.recipient(of: actor), ids: ids, hiding: hiding)], [])
        case .setAttendingDoctor(let rpps, let profession):
            return try settings(.attendingDoctor(rpps, profession: profession), dossier)
        case .setPreferences(let change):
            return try settings(.preferences(change), dossier)
        case .setEmergency(let change):
            return try settings(.emergency(change), dossier)
        case .changeAccessList(let list, let member, let add):
            return try settings(.accessList(list, member: member, add: add), dossier)
        case .close(let death, let deletion):
            if death && deletion {
                throw .invalidRequest("a closure on death keeps the legal retention; it cannot ask for deletion")
            }
            return try lifecycle(.close(reason: death ? .death : .patientRequest, deletionRequested: deletion), dossier, now)
        case .recordDeath:
            return try lifecycle(.close(reason: .death, deletionRequested: false), dossier, now)
        case .reopen:
            return try lifecycle(.reopen, dossier, now)
        case .hold(let reason):
            return try lifecycle(.hold(reason: reason), dossier, now)
        case .releaseHold:
            return try lifecycle(.releaseHold, dossier, now)
        case .oppose:
            do {
                try dossier.lifecycle.checkOpposition(at: now, rules: retention)
            } catch {
                throw .illegalTransition(error)
            }
            return ([.destroy], [])
        case .maskDocument(let id, let masked):
            return ([.document(id, .mask(masked))], [])
        case .releaseDocument(let id):
            return try documentChange(.release(at: now), id, by: caller, dossier: dossier, facts: facts)
        case .deleteDocument(let id):
            return try documentChange(.delete, id, by: caller, dossier: dossier, facts: facts)
        case .addDocument(let upload):
            guard case .person(let actor) = caller else { return ([], []) }
            let document = try DocumentRules.newDocument(upload, by: actor, in: dossier)
            return (
                [.storeDocument(document, replacing: nil)],
                NoticePolicy.stored(document, by: actor, in: dossier, replacing: false).map { [$0] } ?? []
            )
        case .replaceDocument(let id, let upload):
            guard case .person(let actor) = caller, let old = facts.documentMetadata, let oldFacts = facts.document else {
                throw .documentNotFound()
            }
            guard oldFacts.status == .current else {
                throw .conflict("the document is \(oldFacts.status.rawValue); only the current version can be replaced")
            }
            let document = try DocumentRules.newVersion(
                upload, by: actor, replacing: old, facts: oldFacts, at: now, delays: policy.delays)
            return (
                [.storeDocument(document, replacing: id)],
                NoticePolicy.stored(document, by: actor, in: dossier, replacing: true).map { [$0] } ?? []
            )
        }
    }

    /// A change to a stored document, and the notice it owes the patient.
    private func documentChange(
        _ change: DocumentChange, _ id: DocumentID, by caller: Caller, dossier: DossierFacts, facts: OperationFacts
    ) throws(Refusal) -> ([DossierChange], [Notice]) {
        let checked = try DocumentRules.checked(change, on: facts.document)
        var notices: [Notice] = []
        if case .person(let actor) = caller, let document = facts.document,
            let notice = NoticePolicy.changed(checked, document: id, document, by: actor, in: dossier, at: facts.now, delays: policy.delays)
        {
            notices.append(notice)
        }
        return ([.document(id, checked)], notices)
    }

    private func settings(_ change: SettingsChange, _ dossier: DossierFacts) throws(Refusal) -> ([DossierChange], [Notice]) {
        // Checked here on the facts, and again by the store on the dossier as it commits.
        _ = try change.applied(to: dossier.settings)
        return ([.settings(change)], [])
    }

    private func lifecycle(_ change: LifecycleChange, _ dossier: DossierFacts, _ now: Int64) throws(Refusal) -> ([DossierChange], [Notice])
    {
        do {
            _ = try change.applied(to: dossier.lifecycle, at: now)
        } catch {
            throw .illegalTransition(error)
        }
        return ([.lifecycle(change)], [])
    }
}
