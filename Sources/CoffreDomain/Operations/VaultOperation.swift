/// An operator's operation on the vault's keys (or on one dossier's key), traced like every
/// access before it is done: the decision and the entry come from the planner, as for a
/// dossier operation.
public enum VaultOperation: Sendable, Equatable {
    /// Load the master keys installed since the start.
    case reloadKeys
    /// Rewrap every dossier key under the newest master key, in the background.
    case rotateKeys
    /// Retire a master key version nothing uses any more.
    case retireKey(UInt32)
    /// Give one dossier a new key (and, with `reencrypt`, new blobs).
    case rekeyDossier(reencrypt: Bool)

    /// What the trace calls it.
    public var action: DossierAction {
        switch self {
        case .reloadKeys: .reloadKeys
        case .rotateKeys: .rotateKeys
        case .retireKey: .retireKey
        case .rekeyDossier: .rekeyDossier
        }
    }
}

extension OperationPlanner {
    /// The plan of an operator's operation on the vault: operators only, no change of its own
    /// (the vault carries it out once its entry is durable), no notice.
    public func plan(_ operation: VaultOperation, by caller: Caller) -> OperationPlan {
        let decision: AccessDecision =
            switch caller {
            case .operator: .allow("operator")
            case .person, .retentionJob: .deny("operator-only")
            }
        var detail = TraceDetail(caller: caller)
        detail.rule = decision.rule
        var plan = OperationPlan(
            action: operation.action, decision: decision, refusal: nil, detail: detail, changes: [], notices: [])
        if !decision.isAllowed {
            plan.refusal = .accessDenied(rule: decision.rule)
            plan.detail.errorCode = plan.refusal?.code
        }
        return plan
    }

    /// The trace entry of a purge, which the trace keeps without any personal data: the
    /// dossier's random id (a column of the entry) and why, nothing else.
    public static func purgeEntry(reason: String) -> TraceDetail {
        TraceDetail(rule: reason)
    }
}
