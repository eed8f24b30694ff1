/// What one trusted issuer may vouch for: the roles, access modes and professions of the actors
/// its assertions may name.
///
/// A signature proves which software made an assertion, not that this software may speak for
/// that kind of person: a patient portal has no business minting a professional's
/// `bris_de_glace`, or a representative's opposition that destroys a dossier. Each issuer is
/// trusted for what its operator wrote in its scope file, and nothing more.
public struct IssuerScope: Sendable, Equatable {
    /// The roles its actors may have.
    public var roles: Set<Role>
    /// The modes they may act in.
    public var modes: Set<AccessMode>
    /// The professions of the professionals it vouches for; nil for every profession.
    public var professions: Set<Profession>?

    public init(roles: Set<Role>, modes: Set<AccessMode> = [.normal], professions: Set<Profession>? = []) {
        self.roles = roles
        self.modes = modes
        self.professions = professions
    }

    /// Every role, mode and profession: the development issuer's, in development mode only.
    public static let everything = IssuerScope(roles: Set(Role.allCases), modes: Set(AccessMode.allCases), professions: nil)

    /// Nil when the scope covers `actor`; otherwise what it does not cover, in words.
    public func uncovered(_ actor: Actor) -> String? {
        guard roles.contains(actor.role) else { return "the \(actor.role.rawValue) role" }
        guard modes.contains(actor.mode) else { return "mode \(actor.mode.rawValue)" }
        if case .professional(_, let profession, _, _) = actor.subject, let professions, !professions.contains(profession) {
            return "profession \(profession.code)"
        }
        return nil
    }
}
