import CoffreDomain
import Testing

/// The core stage's rules as a table: actor × action → decision and rule.
@Suite struct AccessPolicyTests {
    static let owner = INS("184056312345658")!
    static let other = INS("269029934173285")!
    static let doctor = RPPS.withCheckDigit("1000312345")!

    struct Case: Sendable, CustomTestStringConvertible {
        var actor: Actor
        var allowed: Bool
        var rule: String
        var testDescription: String { "\(actor.role.rawValue) \(actor.mode.rawValue) → \(rule)" }
    }

    static let cases: [Case] = [
        Case(actor: Actor(subject: .patient(owner), issuer: "dev"), allowed: true, rule: "patient.own-dossier"),
        Case(actor: Actor(subject: .patient(other), issuer: "dev"), allowed: false, rule: "patient.other-dossier"),
        Case(
            actor: Actor(subject: .patient(owner), mode: .bris_de_glace, reason: "x", issuer: "dev"), allowed: false,
            rule: "patient.emergency-mode"),
        Case(
            actor: Actor(subject: .representative(other, of: owner), issuer: "dev"), allowed: false,
            rule: "representative.not-yet-supported"),
        Case(
            actor: Actor(subject: .professional(doctor, profession: .medecin, specialty: nil, organization: nil), issuer: "dev"),
            allowed: false, rule: "professional.not-yet-supported"),
    ]

    @Test(arguments: cases, DossierAction.allCases)
    func decision(_ testCase: Case, action: DossierAction) {
        let decision = AccessPolicy().decide(actor: testCase.actor, action: action, dossierOwner: Self.owner)
        #expect(decision.isAllowed == testCase.allowed)
        #expect(decision.rule == testCase.rule)
    }
}
