/// What the patient decided about their dossier: who may see it, the emergency switches and
/// their preferences. Kept encrypted under the dossier key (it says who treats the patient).
public struct DossierSettings: Codable, Sendable, Equatable {
    /// The médecin traitant's RPPS: sees everything, cannot be blocked.
    public var attendingDoctor: String?
    /// Professionals with the médecin traitant's rights, named by the patient.
    public var administrators: Set<String> = []
    /// Professionals the patient authorised (the care team).
    public var authorized: Set<String> = []
    /// Professionals who get nothing, authorised or not.
    public var blocked: Set<String> = []
    /// Organisations (FINESS numbers) whose professionals get nothing.
    public var blockedOrganizations: Set<String> = []
    /// The patient refuses `bris_de_glace` access.
    public var refuseBrisDeGlace = false
    /// The patient refuses `centre_15` access.
    public var refuseCentre15 = false
    /// Masked documents are shown in an emergency (off unless the patient opts in).
    public var showMaskedInEmergency = false
    /// Documents added from now on are masked.
    public var maskNewDocuments = false
    /// Notify the patient of every access by a professional, not only the first.
    public var notifyEveryAccess = false
    /// Notify the patient of each document a professional adds or replaces.
    public var notifyNewDocuments = true
    /// Professionals who have accessed the dossier (for first-access notifications).
    public var professionalsSeen: Set<String> = []

    public init() {}

    /// Whether `rpps` is the médecin traitant or an administrator (whom no block limits).
    public func hasFullRights(_ rpps: String) -> Bool {
        attendingDoctor == rpps || administrators.contains(rpps)
    }

    /// Whether `rpps`, acting as `profession`, has the médecin traitant's rights: the médecin
    /// traitant acting as a doctor, or an administrator. An RPPS named médecin traitant that
    /// presents another profession gets a professional's rights only.
    public func hasFullRights(_ rpps: String, as profession: Profession) -> Bool {
        (attendingDoctor == rpps && profession == .medecin) || administrators.contains(rpps)
    }
}
