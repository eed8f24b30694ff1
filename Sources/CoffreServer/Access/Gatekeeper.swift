import CoffreAPI
import CoffreDomain
import Logging

/// The one place every person-level request passes through before it touches a dossier: it asks
/// the access policy, records the decision, and refuses what the policy denies.
///
/// Today the decision is logged (without personal data); the tamper-evident trace of the
/// access-rules stage records it here too, so that no handler can forget to.
struct Gatekeeper: Sendable {
    let policy: AccessPolicy
    let logger: Logger

    /// Returns the actor if `action` on `owner`'s dossier is allowed; throws `access_denied`
    /// otherwise.
    @discardableResult
    func authorize(_ context: CoffreRequestContext, _ action: DossierAction, dossierOwner owner: INS) throws(Problem) -> Actor {
        guard let actor = context.actor else {
            throw Problem(.assertionMissing, detail: "this call acts for a person: send an actor assertion")
        }
        let decision = policy.decide(actor: actor, action: action, dossierOwner: owner)
        logger.info(
            "access decision",
            metadata: [
                "access.action": "\(action.rawValue)", "access.role": "\(actor.role.rawValue)",
                "access.mode": "\(actor.mode.rawValue)", "access.rule": "\(decision.rule)",
                "access.allowed": "\(decision.isAllowed)",
            ])
        guard decision.isAllowed else {
            throw Problem(.accessDenied, detail: "this actor may not do this on this dossier (rule \(decision.rule))")
        }
        return actor
    }
}
