import Foundation
public import CoffreDomain

/// What an actor assertion says: the analogue of the DMP's VIHF, signed by the issuing software.
///
/// Times are seconds since the Unix epoch. Identifiers are checked when the assertion is turned
/// into an `Actor`; an assertion that names an invalid INS or RPPS is malformed.
public struct AssertionClaims: Codable, Sendable, Equatable {
    /// Issuer id: the name of the issuing software's public key in the trust directory.
    public var iss: String
    /// The person: an INS for a patient or representative, an RPPS for a professional.
    public var sub: String
    public var role: Role
    /// For a representative: the INS of the patient represented.
    public var patient: String?
    /// Profession code (RPPS nomenclature), for a professional.
    public var profession: String?
    /// Specialty, for doctors and pharmacists.
    public var specialty: String?
    /// FINESS number of the professional's organisation.
    public var organization: String?
    public var mode: AccessMode
    /// Written reason, mandatory for `bris_de_glace`.
    public var reason: String?
    /// Name of the software acting for the person.
    public var software: String
    /// Issued at.
    public var iat: Int64
    /// Expires at.
    public var exp: Int64
    /// A random nonce identifying this assertion.
    public var jti: String

    public init(
        iss: String, sub: String, role: Role, patient: String? = nil, profession: String? = nil,
        specialty: String? = nil, organization: String? = nil, mode: AccessMode = .normal,
        reason: String? = nil, software: String, iat: Int64, exp: Int64, jti: String
    ) {
        self.iss = iss
        self.sub = sub
        self.role = role
        self.patient = patient
        self.profession = profession
        self.specialty = specialty
        self.organization = organization
        self.mode = mode
        self.reason = reason
        self.software = software
        self.iat = iat
        self.exp = exp
        self.jti = jti
    }

    /// The actor these claims describe, or a `Problem` naming what is wrong with them.
    public func actor() throws(Problem) -> Actor {
        let subject: Actor.Subject
        switch role {
        case .patient:
            guard let ins = INS(sub) else { throw Problem(.assertionMalformed, detail: "the assertion's subject is not a valid INS") }
            subject = .patient(ins)
        case .representative:
            guard let ins = INS(sub), let represented = patient.flatMap(INS.init) else {
                throw Problem(.assertionMalformed, detail: "a representative's assertion needs a valid INS as subject and as patient")
            }
            subject = .representative(ins, of: represented)
        case .professional:
            guard let rpps = RPPS(sub) else {
                throw Problem(.assertionMalformed, detail: "the assertion's subject is not a valid RPPS number")
            }
            guard let code = profession, let profession = Profession(code) else {
                throw Problem(.assertionMalformed, detail: "a professional's assertion needs a two-digit profession code")
            }
            // The FINESS in canonical form (2A/2B upper-cased), so that it matches the patient's blocks.
            let organization = organization.map { FINESS($0)?.value ?? $0.uppercased() }
            subject = .professional(rpps, profession: profession, specialty: specialty, organization: organization)
        }
        if mode == .bris_de_glace, (reason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw Problem(.assertionMalformed, detail: "mode bris_de_glace requires a written reason")
        }
        return Actor(subject: subject, mode: mode, reason: reason, issuer: iss)
    }
}
