/// An operator's (or the retention job's) operation on the vault as a whole, or on one
/// dossier's key, traced like every access before it is done: the decision and the entry come
/// from the planner, as for a dossier operation.
public enum VaultOperation: Sendable, Equatable {
    /// Load the master keys installed since the start.
    case reloadKeys
    /// Rewrap every dossier key under the newest master key, in the background.
    case rotateKeys
    /// Retire a master key version nothing uses any more.
    case retireKey(UInt32)
    /// Give one dossier a new key (and, with `reencrypt`, new blobs).
    case rekeyDossier(reencrypt: Bool)
    /// Read the master key versions, what each wraps, and the rotation.
    case readKeys
    /// Count the dossiers due for purge.
    case readRetentionDue
    /// Run a retention batch; a dry run changes nothing.
    case runRetention(dryRun: Bool)
    /// Check the index, the blobs and the trace (every document, or a sample).
    case verify
    /// Read the daemon's status (key versions, arena, build).
    case readStatus
    /// Move the development daemon's clock.
    case setClock

    /// What the trace calls it.
    public var action: DossierAction {
        switch self {
        case .reloadKeys: .reloadKeys
        case .rotateKeys: .rotateKeys
        case .retireKey: .retireKey
        case .rekeyDossier: .rekeyDossier
        case .readKeys: .readKeys
        case .readRetentionDue: .readRetentionDue
        case .runRetention: .runRetention
        case .verify: .verifyVault
        case .readStatus: .readStatus
        case .setClock: .setClock
        }
    }

    /// Whether the retention job may ask for it too (operators may ask for every one).
    public var isRetentionJobs: Bool {
        switch self {
        case .readRetentionDue, .runRetention: true
        default: false
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
            case .retentionJob: operation.isRetentionJobs ? .allow("retention-job") : .deny("operator-only")
            case .person: .deny("operator-only")
            }
        var detail = TraceDetail(caller: caller)
        if case .runRetention(dryRun: true) = operation { detail.mode = "dry-run" }
        detail.rule = decision.rule
        var plan = OperationPlan(
            action: operation.action, decision: decision, refusal: nil, detail: detail, changes: [], notices: [],
            assertion: caller.assertion)
        if !decision.isAllowed {
            plan.refusal = .accessDenied(rule: decision.rule)
            plan.detail.errorCode = plan.refusal?.code
        }
        return plan
    }

    /// The trace entry of a purge, which the trace keeps without any personal data: the
    /// dossier's random id (a column of the entry), why, and who purged it (the retention job
    /// or an operator by uid; none for an opposition, which the patient's own entry records).
    public static func purgeEntry(reason: String, by caller: Caller? = nil) -> TraceDetail {
        var detail = caller.map { TraceDetail(caller: $0) } ?? TraceDetail()
        detail.rule = reason
        return detail
    }

    /// The retention job's verdict on one dossier it looks at, from what the index holds of it
    /// and its sealed lifecycle (the source of truth: a clear column alone never purges).
    public func retentionVerdict(_ facts: PurgeFacts) -> PurgeVerdict {
        if facts.purging {
            // A purge interrupted after the key was destroyed is finished; the state column
            // saying `purging` beside a key that is still there is damage, never a purge.
            return facts.keyDestroyed
                ? .purge(reason: "resume-interrupted-purge")
                : .failed(reason: "the index says purging but the dossier key is still there; check the index")
        }
        switch facts.lifecycle {
        case .none:
            return .failed(reason: facts.unreadable ?? "the dossier's sealed record cannot be opened")
        case .some(let lifecycle):
            switch lifecycle.retentionVerdict(at: facts.now, rules: retention) {
            case .purge(let reason): return .purge(reason: reason)
            case .held: return .held
            case .keep: return .failed(reason: "the index's purge date disagrees with the dossier's sealed record")
            }
        }
    }
}

/// What the retention job knows of one dossier the index lists as due.
public struct PurgeFacts: Sendable {
    /// The index's state column says `purging` (a purge began).
    public var purging: Bool
    /// The dossier key is gone (destroyed by that purge).
    public var keyDestroyed: Bool
    /// The sealed lifecycle, nil when it cannot be opened (then `unreadable` says why).
    public var lifecycle: DossierLifecycle?
    public var unreadable: String?
    public var now: Int64

    public init(purging: Bool, keyDestroyed: Bool, lifecycle: DossierLifecycle?, unreadable: String? = nil, now: Int64) {
        self.purging = purging
        self.keyDestroyed = keyDestroyed
        self.lifecycle = lifecycle
        self.unreadable = unreadable
        self.now = now
    }
}

/// The retention job's verdict on one dossier.
public enum PurgeVerdict: Sendable, Equatable {
    case purge(reason: String)
    /// Due, but a legal hold blocks the purge.
    case held
    /// Not purged, and an operator must look: why.
    case failed(reason: String)
}
