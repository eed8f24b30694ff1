import CoffreAPI
import CoffreDomain
import CoffreStore
import Logging

/// The one place every person-level request passes through before it touches a dossier: it asks
/// the access policy, writes the decision to the trace, and refuses what the policy denies.
///
/// The trace entry is durable before the access proceeds; if it cannot be written, the access
/// is refused (fail closed).
struct Gatekeeper: Sendable {
    let policy: AccessPolicy
    let vault: Vault
    let notifier: Notifier
    let clock: any VaultClock
    let logger: Logger

    /// The verified actor of the request, or `assertion_missing`.
    func actor(_ context: CoffreRequestContext) throws(Problem) -> Actor {
        guard let actor = context.actor else {
            throw Problem(.assertionMissing, detail: "this call acts for a person: send an actor assertion")
        }
        return actor
    }

    /// Returns the actor if `action` is allowed on the dossier of `owner` (and `document`),
    /// once the decision is in the trace; throws `access_denied` (traced) otherwise.
    @discardableResult
    func authorize(
        _ context: CoffreRequestContext, _ action: DossierAction, owner: INS, dossier: DossierRecord?, document: DocumentRecord? = nil
    ) async throws -> Actor {
        let actor = try actor(context)
        let facts = dossier?.facts ?? DossierFacts(owner: owner)
        let decision = policy.decide(actor: actor, action: action, dossier: facts, document: document?.facts, now: clock.now())
        logger.info(
            "access decision",
            metadata: [
                "access.action": "\(action.rawValue)", "access.role": "\(actor.role.rawValue)",
                "access.mode": "\(actor.mode.rawValue)", "access.rule": "\(decision.rule)",
                "access.allowed": "\(decision.isAllowed)", "access.matrix": "\(decision.matrixVersion ?? "-")",
            ])
        var detail = TraceDetail(actor: actor)
        detail.documentID = document?.id.value
        detail.rule = decision.rule
        detail.matrixVersion = decision.matrixVersion
        if !decision.isAllowed { detail.errorCode = ErrorCode.accessDenied.rawValue }
        do {
            try await vault.recordTrace(
                action: action.rawValue, outcome: decision.isAllowed ? .allowed : .denied, detail: detail, dossier: dossier)
        } catch {
            logger.error("trace write failed: access refused", metadata: ["access.action": "\(action.rawValue)", "error": "\(error)"])
            throw Traced(Problem(.traceUnavailable, detail: "the access could not be traced, so it was refused; retry shortly"))
        }
        guard decision.isAllowed else {
            throw Traced(Problem(.accessDenied, detail: "this actor may not do this on this dossier (rule \(decision.rule))"))
        }
        if let dossier {
            try await notifier.accessed(by: actor, dossier: dossier)
        }
        return actor
    }

    /// Whether `actor` may see `document` in a listing; listings show only what may be read
    /// (the listing itself is the traced access).
    func canSee(_ actor: Actor, _ document: DocumentRecord, in dossier: DossierRecord) -> Bool {
        policy.decide(actor: actor, action: .readDocumentMetadata, dossier: dossier.facts, document: document.facts, now: clock.now())
            .isAllowed
    }
}

/// A refusal already written to the trace, so the error middleware does not trace it twice.
struct Traced: Error {
    let problem: Problem
    init(_ problem: Problem) { self.problem = problem }
}

extension TraceDetail {
    /// Who acted, in the trace's words.
    init(actor: Actor) {
        switch actor.subject {
        case .patient(let ins):
            self.init(actorRole: "patient", actorID: ins.value)
        case .representative(let ins, _):
            self.init(actorRole: "representative", actorID: ins.value)
        case .professional(let rpps, let profession, let specialty, let organization):
            self.init(
                actorRole: "professional", actorID: rpps.value, profession: profession.code, specialty: specialty,
                organization: organization)
        }
        mode = actor.mode.rawValue
        reason = actor.reason
        issuer = actor.issuer
    }
}
