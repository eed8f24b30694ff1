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

    public init(subject: Subject, mode: AccessMode = .normal, reason: String? = nil, issuer: String) {
        self.subject = subject
        self.mode = mode
        self.reason = reason
        self.issuer = issuer
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
