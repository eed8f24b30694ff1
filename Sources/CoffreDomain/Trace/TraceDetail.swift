/// What a trace entry says, in full. Stored encrypted under the dossier key when the entry
/// belongs to a dossier; without one (a refused assertion, an unknown route), only the fields
/// that identify nobody are kept, in clear (`anonymous`).
public struct TraceDetail: Codable, Sendable, Equatable {
    public var actorRole: String?
    /// INS or RPPS of the actor; an operator's or job's uid.
    public var actorID: String?
    public var profession: String?
    public var specialty: String?
    public var organization: String?
    public var mode: String?
    public var reason: String?
    public var issuer: String?
    public var documentID: String?
    /// The version a replacement replaces (`documentID` names the new one).
    public var replacedDocumentID: String?
    /// The rule that decided.
    public var rule: String?
    /// The habilitation matrix version, when it decided.
    public var matrixVersion: String?
    /// The error code of a refusal.
    public var errorCode: String?
    /// How many refusals an aggregated entry stands for (refusals before any decision are
    /// counted by kind and written once per interval).
    public var count: Int?

    public init(
        actorRole: String? = nil, actorID: String? = nil, profession: String? = nil, specialty: String? = nil,
        organization: String? = nil, mode: String? = nil, reason: String? = nil, issuer: String? = nil,
        documentID: String? = nil, rule: String? = nil, matrixVersion: String? = nil, errorCode: String? = nil
    ) {
        self.actorRole = actorRole
        self.actorID = actorID
        self.profession = profession
        self.specialty = specialty
        self.organization = organization
        self.mode = mode
        self.reason = reason
        self.issuer = issuer
        self.documentID = documentID
        self.rule = rule
        self.matrixVersion = matrixVersion
        self.errorCode = errorCode
    }

    /// Who called, in the trace's words.
    public init(caller: Caller) {
        switch caller {
        case .person(let actor): self.init(actor: actor)
        case .operator(let uid): self.init(actorRole: "operator", actorID: "uid \(uid)")
        case .retentionJob(let uid): self.init(actorRole: "retention", actorID: "uid \(uid)")
        }
    }

    /// Who acted, in the trace's words.
    public init(actor: Actor) {
        switch actor.subject {
        case .patient(let ins):
            self.init(actorRole: "patient", actorID: ins.value)
        case .representative(let ins, _):
            self.init(actorRole: "representative", actorID: ins.value)
        case .professional(let rpps, let profession, let specialty, let organization):
            self.init(
                actorRole: "professional", actorID: rpps.value, profession: profession.code, specialty: specialty,
                organization: organization)
        }
        mode = actor.mode.rawValue
        reason = actor.reason
        issuer = actor.issuer
    }

    /// What may be kept in clear when there is no dossier key: no identifier, no free text.
    /// An operator's uid is not personal health data and is what an audit of key operations
    /// needs, so it stays.
    public var anonymous: TraceDetail {
        var clear = TraceDetail(
            actorRole: actorRole, actorID: actorRole == "operator" || actorRole == "retention" ? actorID : nil, mode: mode, rule: rule,
            errorCode: errorCode)
        clear.count = count
        return clear
    }
}

/// How an operation ended, as its trace entry records it.
public enum TraceOutcome: String, Sendable, Codable {
    /// Allowed by the access rules, and done.
    case allowed
    /// Denied by the access rules.
    case denied
    /// Refused for another reason: before any decision (a bad assertion, an unknown route), or
    /// because the dossier's state does not allow it (closing a closed dossier).
    case refused
    /// Failed on the server's side.
    case failed
}
