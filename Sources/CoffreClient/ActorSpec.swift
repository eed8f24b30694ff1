import CoffreAPI
public import CoffreCrypto
public import CoffreDomain
import Foundation

/// The `--as` argument: who the client acts for.
///
/// Forms: `patient:INS`, `pro:RPPS:PROFESSION[:SPECIALTY][@FINESS]` (a professional, acting
/// for the establishment FINESS if given), `rep:INS:PATIENT_INS` (a legal representative).
public struct ActorSpec: Sendable, Equatable {
    public var role: Role
    public var subject: String
    public var profession: String?
    public var specialty: String?
    public var representedPatient: String?
    /// The establishment (FINESS) a professional acts for.
    public var organization: String?

    /// Parses the spec, checking INS, RPPS and FINESS.
    public init(parsing text: String) throws(ClientError) {
        func bad(_ why: String) -> ClientError {
            ClientError(
                code: "invalid_actor",
                message: "--as \(why); use patient:INS, pro:RPPS:PROFESSION[:SPECIALTY][@FINESS] or rep:INS:PATIENT_INS",
                exitCode: ExitStatus.usage)
        }
        var text = text
        var organization: String? = nil
        if text.hasPrefix("pro:"), let at = text.lastIndex(of: "@") {
            guard let finess = FINESS(String(text[text.index(after: at)...])) else {
                throw bad("has an invalid FINESS after @ (9 characters, Luhn check)")
            }
            organization = finess.value
            text = String(text[..<at])
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "patient":
            guard parts.count == 2 else { throw bad("patient takes one INS") }
            guard INS(parts[1]) != nil else { throw bad("has an invalid INS (15 characters, key 97 − NIR mod 97)") }
            self.init(role: .patient, subject: INS(parts[1])!.value)
        case "pro":
            guard parts.count == 3 || parts.count == 4 else { throw bad("pro takes RPPS:PROFESSION[:SPECIALTY]") }
            guard RPPS(parts[1]) != nil else { throw bad("has an invalid RPPS (11 digits, Luhn check)") }
            guard Profession(parts[2]) != nil else { throw bad("has an invalid profession code (two digits, e.g. 10)") }
            self.init(
                role: .professional, subject: parts[1], profession: parts[2], specialty: parts.count == 4 ? parts[3] : nil,
                organization: organization)
        case "rep":
            guard parts.count == 3, let rep = INS(parts[1]), let patient = INS(parts[2]) else { throw bad("rep takes INS:PATIENT_INS") }
            self.init(role: .representative, subject: rep.value, representedPatient: patient.value)
        default:
            throw bad("must start with patient:, pro: or rep:")
        }
    }

    init(
        role: Role, subject: String, profession: String? = nil, specialty: String? = nil, representedPatient: String? = nil,
        organization: String? = nil
    ) {
        self.role = role
        self.subject = subject
        self.profession = profession
        self.specialty = specialty
        self.representedPatient = representedPatient
        self.organization = organization
    }

    /// The dossier this actor acts on by default: their own, or the represented patient's.
    public var defaultPatient: String? {
        switch role {
        case .patient: subject
        case .representative: representedPatient
        case .professional: nil
        }
    }

    /// Mints and signs an assertion for this actor with a development issuer key.
    public func mint(
        mode: AccessMode, reason: String?, issuer: String, key: Ed25519SigningKey, lifetime: Int64 = 300
    ) throws -> String {
        let now = Int64(Date().timeIntervalSince1970)
        let claims = AssertionClaims(
            iss: issuer, sub: subject, role: role, patient: representedPatient, profession: profession,
            specialty: specialty, organization: organization, mode: mode, reason: reason, software: "coffre-cli",
            iat: now, exp: now + lifetime, jti: SecureRandom.hexIdentifier())
        return try SignedAssertion.sign(claims, with: key)
    }
}
