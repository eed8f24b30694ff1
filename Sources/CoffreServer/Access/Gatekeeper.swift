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
        let (actor, allowed, detail) = try decide(context, action, owner: owner, dossier: dossier, document: document)
        try await trace(action, allowed: allowed, detail: detail, dossier: dossier)
        guard allowed else { throw Self.denied(detail) }
        if let dossier {
            try await notifier.accessed(by: actor, dossier: dossier)
        }
        return actor
    }

    /// For a change the vault records in the same transaction as its decision's trace entry (a
    /// store): a denial is traced and thrown here, as by `authorize`; an allowed decision comes
    /// back as the entry the vault writes with the change, so that the two are durable together.
    func authorizeChange(
        _ context: CoffreRequestContext, _ action: DossierAction, owner: INS, dossier: DossierRecord, document: DocumentRecord? = nil
    ) async throws -> (Actor, TraceIntent) {
        let (actor, allowed, detail) = try decide(context, action, owner: owner, dossier: dossier, document: document)
        guard allowed else {
            try await trace(action, allowed: false, detail: detail, dossier: dossier)
            throw Self.denied(detail)
        }
        try await notifier.accessed(by: actor, dossier: dossier)
        return (actor, TraceIntent(action: action.rawValue, detail: detail))
    }

    /// Writes the decision to the trace; throws `trace_unavailable` (fail closed) if it cannot.
    /// A read or a refusal changes nothing: its entry is written before the answer and made
    /// durable by batch. A decision that allows a change is durable before the change is made.
    private func trace(_ action: DossierAction, allowed: Bool, detail: TraceDetail, dossier: DossierRecord?) async throws {
        do {
            try await vault.recordTrace(
                action: action.rawValue, outcome: allowed ? .allowed : .denied, detail: detail, dossier: dossier,
                durability: allowed && !action.onlyReads ? .beforeReturning : .batched)
        } catch {
            logger.error("trace write failed: access refused", metadata: ["access.action": "\(action.rawValue)", "error": "\(error)"])
            throw Traced(Problem(.traceUnavailable, detail: "the access could not be traced, so it was refused; retry shortly"))
        }
    }

    private static func denied(_ detail: TraceDetail) -> Traced {
        Traced(Problem(.accessDenied, detail: "this actor may not do this on this dossier (rule \(detail.rule ?? "-"))"))
    }

    /// Asks the access policy and logs the answer; writes nothing.
    private func decide(
        _ context: CoffreRequestContext, _ action: DossierAction, owner: INS, dossier: DossierRecord?, document: DocumentRecord?
    ) throws(Problem) -> (Actor, allowed: Bool, TraceDetail) {
        let actor = try actor(context)
        let facts = dossier?.facts ?? DossierFacts(owner: owner)
        let decision = policy.decide(actor: actor, action: action, dossier: facts, document: document?.facts, now: clock.now())
        // The trace is the record of every access. The journal gets refusals at info, which an
        // operator watches; allowed accesses only at debug: one journal line per document read
        // would cost every request a system call and repeat the trace's content in the logs.
        logger.log(
            level: decision.isAllowed ? .debug : .info,
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
        return (actor, decision.isAllowed, detail)
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
