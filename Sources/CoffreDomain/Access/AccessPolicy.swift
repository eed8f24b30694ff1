/// Decides who may do what on a dossier. Pure: no I/O, no clock, no storage.
///
/// This is the core stage of the DMP's rules: the patient (titulaire) has full access to their
/// own dossier, and nobody else has any. The professional rules (authorisations, blocking, the
/// habilitation matrix, masking, emergency modes) extend this type, not the routes.
public struct AccessPolicy: Sendable {
    public init() {}

    /// Decides whether `actor` may perform `action` on the dossier of the patient `dossierOwner`.
    public func decide(actor: Actor, action: DossierAction, dossierOwner: INS) -> AccessDecision {
        switch actor.subject {
        case .patient(let ins):
            guard ins == dossierOwner else { return .deny("patient.other-dossier") }
            guard actor.mode == .normal else { return .deny("patient.emergency-mode") }
            return .allow("patient.own-dossier")
        case .representative:
            return .deny("representative.not-yet-supported")
        case .professional:
            return .deny("professional.not-yet-supported")
        }
    }
}
