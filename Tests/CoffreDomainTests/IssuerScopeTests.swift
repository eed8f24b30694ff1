import CoffreDomain
import Testing

/// What an issuer may vouch for, as a table: scope × actor → covered or what is not.
@Suite struct IssuerScopeTests {
    static let patient = Actor(subject: .patient(INS("184056312345658")!), issuer: "x")
    static let representative = Actor(subject: .representative(INS("269029934173285")!, of: INS("184056312345658")!), issuer: "x")
    static func professional(_ code: String, mode: AccessMode = .normal) -> Actor {
        Actor(
            subject: .professional(RPPS.withCheckDigit("1000000001")!, profession: Profession(code)!, specialty: nil, organization: nil),
            mode: mode, reason: mode == .normal ? nil : "urgence", issuer: "x")
    }

    static let portal = IssuerScope(roles: [.patient])
    static let hospital = IssuerScope(roles: [.professional], modes: [.normal, .bris_de_glace], professions: [.medecin])
    static let samu = IssuerScope(roles: [.professional], modes: [.centre_15], professions: nil)

    @Test(
        arguments: [
            (portal, patient, nil),
            (portal, representative, "the representative role"),
            (portal, professional("10"), "the professional role"),
            (
                IssuerScope(roles: [.patient, .professional], professions: nil), professional("10", mode: .bris_de_glace),
                "mode bris_de_glace"
            ),
            (hospital, professional("10"), nil),
            (hospital, professional("10", mode: .bris_de_glace), nil),
            (hospital, professional("10", mode: .centre_15), "mode centre_15"),
            (hospital, professional("60"), "profession 60"),
            (hospital, patient, "the patient role"),
            (samu, professional("40", mode: .centre_15), nil),
            (samu, professional("40"), "mode normal"),
            (IssuerScope.everything, professional("86", mode: .centre_15), nil),
            (IssuerScope.everything, representative, nil),
        ] as [(IssuerScope, Actor, String?)])
    func anActorIsCoveredOrTheScopeSaysWhatItLacks(scope: IssuerScope, actor: Actor, uncovered: String?) {
        #expect(scope.uncovered(actor) == uncovered)
    }
}
