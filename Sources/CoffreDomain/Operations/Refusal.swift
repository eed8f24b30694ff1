/// Why an operation was refused, as the rules say it; the API turns each into its stable
/// error code (`code` is that code).
public enum Refusal: Error, Sendable, Equatable {
    /// The access rules deny it; `rule` names the rule, `explanation` (when there is one) says
    /// what to do instead.
    case accessDenied(rule: String, explanation: String? = nil)
    /// The patient has no dossier (said only to whoever could act on one if it existed).
    case dossierNotFound
    case dossierExists
    /// No such document in this dossier (or, with a reason, not any more).
    case documentNotFound(String? = nil)
    /// The dossier's life does not allow it now.
    case illegalTransition(LifecycleError)
    /// The request asks for something the rules never allow in that form.
    case invalidRequest(String)
    /// A new document without its class.
    case classMissing
    /// The document is not in a state that allows it (already replaced, deleted, not hidden).
    case conflict(String)

    /// The stable error code (the API's `ErrorCode` raw value).
    public var code: String {
        switch self {
        case .accessDenied: "access_denied"
        case .dossierNotFound: "dossier_not_found"
        case .dossierExists: "dossier_exists"
        case .documentNotFound: "document_not_found"
        case .illegalTransition: "illegal_transition"
        case .invalidRequest: "invalid_metadata"
        case .classMissing: "unknown_class"
        case .conflict: "document_conflict"
        }
    }

    /// Words for the caller: what was refused and, where it helps, what to do.
    public var explanation: String {
        switch self {
        case .accessDenied(let rule, let explanation):
            explanation ?? "this actor may not do this on this dossier (rule \(rule))"
        case .dossierNotFound: "this patient has no dossier; create it with `coffre dossier create`"
        case .dossierExists: "this patient already has a dossier"
        case .documentNotFound(let reason): reason ?? "no such document in this dossier"
        case .illegalTransition(let error): error.description
        case .invalidRequest(let text), .conflict(let text): text
        case .classMissing: "send the document class; accepted: \(DocumentClass.accepted)"
        }
    }
}
