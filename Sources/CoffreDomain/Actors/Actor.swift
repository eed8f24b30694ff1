/// Who a person-level request acts for, as established by a verified actor assertion.
public struct Actor: Sendable, Hashable {
    /// The person's identity.
    public var subject: Subject
    /// How the person is acting.
    public var mode: AccessMode
    /// The written reason for an emergency access (`bris_de_glace` requires one).
    public var reason: String?
    /// The software that issued the assertion (its issuer id in the trust directory).
    public var issuer: String
    /// The single-use assertion the request carried, which the operation's commit records.
    public var assertion: AssertionUse?

    public init(subject: Subject, mode: AccessMode = .normal, reason: String? = nil, issuer: String, assertion: AssertionUse? = nil) {
        self.subject = subject
        self.mode = mode
        self.reason = reason
        self.issuer = issuer
        self.assertion = assertion
    }

    /// The identities a person can have in the DMP.
    public enum Subject: Sendable, Hashable {
        /// The dossier's own patient (titulaire).
        case patient(INS)
        /// A legal representative acting for the patient `of`; identified by their own INS.
        case representative(INS, of: INS)
        /// A health professional.
        case professional(RPPS, profession: Profession, specialty: String?, organization: String?)
    }

    /// The role name as assertions and the trace write it.
    public var role: Role {
        switch subject {
        case .patient: .patient
        case .representative: .representative
        case .professional: .professional
        }
    }
}

/// The role a person acts in.
public enum Role: String, Sendable, Codable, CaseIterable {
    case patient
    case representative
    case professional
}

/// The access mode an assertion declares.
public enum AccessMode: String, Sendable, Codable, CaseIterable {
    case normal
    /// Emergency access by any professional, with a written reason.
    case bris_de_glace
    /// SAMU regulation (centre 15).
    case centre_15
}

/// A profession code from the RPPS nomenclature (10 médecin, 21 pharmacien, …).
public struct Profession: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The code, two digits.
    public let code: String

    /// Accepts a two-digit code.
    public init?(_ code: String) {
        guard code.utf8.count == 2, code.utf8.allSatisfy({ (48...57).contains($0) }) else { return nil }
        self.code = code
    }

    public var description: String { code }

    public static let medecin = Profession("10")!
    public static let pharmacien = Profession("21")!
}

/// A single-use actor assertion, as the vault records it: with the operation it allowed, in
/// that operation's commit, so that no daemon sharing the index accepts it a second time.
public struct AssertionUse: Sendable, Hashable {
    /// 16 bytes derived from the issuer and the assertion's id.
    public var fingerprint: [UInt8]
    /// From when it can be forgotten (seconds since the epoch, by the real clock): the moment
    /// the assertion can no longer verify.
    public var forgettableAt: Int64

    public init(fingerprint: [UInt8], forgettableAt: Int64) {
        self.fingerprint = fingerprint
        self.forgettableAt = forgettableAt
    }
}
