public import CoffreDomain

/// Body of `PUT /v1/patients/{ins}/dossier/attending-doctor`.
public struct AttendingDoctorRequest: Codable, Sendable {
    /// The médecin traitant's RPPS number.
    public var rpps: String
    /// Their profession code in the RPPS nomenclature: a médecin traitant is a doctor, 10.
    public var profession: String?
    public init(rpps: String, profession: String?) {
        self.rpps = rpps
        self.profession = profession
    }
}

/// Body of `PATCH /v1/patients/{ins}/dossier/preferences`; absent fields are left unchanged.
public typealias PreferencesRequest = PreferencesChange

/// Body of `PATCH /v1/patients/{ins}/access/emergency`: what the patient allows beforehand
/// (`brisDeGlace`, `centre15`, `masked`: true allows); absent fields are left unchanged.
public typealias EmergencyRequest = EmergencyChange

/// Who may see the dossier, as the patient decided.
public struct AccessView: Codable, Sendable, Equatable {
    public var attendingDoctor: String?
    public var administrators: [String]
    public var authorized: [String]
    public var blocked: [String]
    public var blockedOrganizations: [String]
    public var emergency: Emergency
    public var preferences: Preferences

    /// The emergency switches.
    public struct Emergency: Codable, Sendable, Equatable {
        public var brisDeGlace: Bool
        public var centre15: Bool
        public var masked: Bool
        public init(brisDeGlace: Bool, centre15: Bool, masked: Bool) {
            self.brisDeGlace = brisDeGlace
            self.centre15 = centre15
            self.masked = masked
        }
    }

    /// The patient's preferences.
    public struct Preferences: Codable, Sendable, Equatable {
        public var maskNewDocuments: Bool
        public var notifyEveryAccess: Bool
        public var notifyNewDocuments: Bool
        public init(maskNewDocuments: Bool, notifyEveryAccess: Bool, notifyNewDocuments: Bool) {
            self.maskNewDocuments = maskNewDocuments
            self.notifyEveryAccess = notifyEveryAccess
            self.notifyNewDocuments = notifyNewDocuments
        }
    }

    public init(
        attendingDoctor: String?, administrators: [String], authorized: [String], blocked: [String],
        blockedOrganizations: [String], emergency: Emergency, preferences: Preferences
    ) {
        self.attendingDoctor = attendingDoctor
        self.administrators = administrators
        self.authorized = authorized
        self.blocked = blocked
        self.blockedOrganizations = blockedOrganizations
        self.emergency = emergency
        self.preferences = preferences
    }
}
