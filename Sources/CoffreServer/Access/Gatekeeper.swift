import CoffreAPI
import CoffreDomain
import CoffreStore
import Logging

/// The one place every person-level request passes through before it touches a dossier: it asks
/// the access policy, records the decision, and refuses what the policy denies.
///
/// Today the decision is logged (without personal data); the tamper-evident trace records it
/// here too, so that no handler can forget to.
struct Gatekeeper: Sendable {
    let policy: AccessPolicy
    let clock: any VaultClock
    let logger: Logger

    /// The verified actor of the request, or `assertion_missing`.
    func actor(_ context: CoffreRequestContext) throws(Problem) -> Actor {
        guard let actor = context.actor else {
            throw Problem(.assertionMissing, detail: "this call acts for a person: send an actor assertion")
        }
        return actor
    }

    /// Returns the actor if `action` is allowed on `dossier` (and `document`); throws
    /// `access_denied` otherwise.
    @discardableResult
    func authorize(
        _ context: CoffreRequestContext, _ action: DossierAction, dossier: DossierFacts, document: DocumentFacts? = nil
    ) throws(Problem) -> Actor {
        let actor = try actor(context)
        let decision = policy.decide(actor: actor, action: action, dossier: dossier, document: document, now: clock.now())
        logger.info(
            "access decision",
            metadata: [
                "access.action": "\(action.rawValue)", "access.role": "\(actor.role.rawValue)",
                "access.mode": "\(actor.mode.rawValue)", "access.rule": "\(decision.rule)",
                "access.allowed": "\(decision.isAllowed)", "access.matrix": "\(decision.matrixVersion ?? "-")",
            ])
        guard decision.isAllowed else {
            throw Problem(.accessDenied, detail: "this actor may not do this on this dossier (rule \(decision.rule))")
        }
        return actor
    }

    /// Whether `actor` may see `document` in a listing; listings show only what may be read.
    func canSee(_ actor: Actor, _ document: DocumentFacts, in dossier: DossierFacts) -> Bool {
        policy.decide(actor: actor, action: .readDocumentMetadata, dossier: dossier, document: document, now: clock.now()).isAllowed
    }
}
