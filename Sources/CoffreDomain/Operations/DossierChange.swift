/// A change an operation makes to a dossier. The store applies it in the transaction that
/// records the operation's trace entry and notices, to the dossier as it is in that
/// transaction: a change the rules would refuse on the fresh state (a block that concurrent
/// naming made illegal, a closing raced by another) fails there, and nothing of it is written.
public enum DossierChange: Sendable, Equatable {
    /// A new dossier, active at once.
    case create
    case settings(SettingsChange)
    case lifecycle(LifecycleChange)
    /// Masking, releasing or deleting a document (all its versions).
    case document(DocumentID, DocumentChange)
    /// A new document, or a new version of `replacing`.
    case storeDocument(NewDocument, replacing: DocumentID?)
    /// Marks the recipient's pending notices read (every one when `ids` is nil); a
    /// representative (`hiding` what they may not learn) marks only those they may read.
    case acknowledgeNotices(NotificationRecipient, ids: [String]?, hiding: ConfidentialCare?)
    /// The dossier destroyed at once (an opposition): keys first, then blobs and rows.
    case destroy
}

/// A change to what the patient decided about access.
public enum SettingsChange: Sendable, Equatable {
    /// The médecin traitant, with the profession the patient gives for them.
    case attendingDoctor(RPPS, profession: Profession?)
    case preferences(PreferencesChange)
    case emergency(EmergencyChange)
    case accessList(AccessList, member: AccessMember, add: Bool)
    /// A professional accessed the dossier (for first-access notices).
    case professionalSeen(RPPS)

    /// The settings after the change, or the rule that refuses it.
    public func applied(to old: DossierSettings) throws(Refusal) -> DossierSettings {
        var settings = old
        switch self {
        case .attendingDoctor(let rpps, let profession):
            // The médecin traitant is a doctor (CSS L162-5-3): their rights are a doctor's.
            guard let profession else {
                throw .invalidRequest("say the médecin traitant's profession: 10 (médecin) is the only one accepted")
            }
            guard profession == .medecin else {
                throw .invalidRequest(
                    "the médecin traitant is a doctor (profession 10); profession \(profession.code) cannot be named médecin traitant")
            }
            settings.attendingDoctor = rpps.value
            // The médecin traitant cannot be blocked.
            settings.blocked.remove(rpps.value)
        case .preferences(let change):
            if let value = change.maskNewDocuments { settings.maskNewDocuments = value }
            if let value = change.notifyEveryAccess { settings.notifyEveryAccess = value }
            if let value = change.notifyNewDocuments { settings.notifyNewDocuments = value }
        case .emergency(let change):
            if let allow = change.brisDeGlace { settings.refuseBrisDeGlace = !allow }
            if let allow = change.centre15 { settings.refuseCentre15 = !allow }
            if let allow = change.masked { settings.showMaskedInEmergency = allow }
        case .accessList(let list, let member, let add):
            let value = member.value
            switch (list, member) {
            case (.authorized, _):
                Self.apply(add, value, to: &settings.authorized)
                // An administrator is an authorised professional given more: withdrawing the
                // authorisation withdraws both.
                if !add { settings.administrators.remove(value) }
            case (.administrators, _):
                if add && !settings.authorized.contains(value) {
                    throw .invalidRequest(
                        "only a professional you have already authorised can be named administrator: authorise \(value) first "
                            + "(`coffre access grant \(value)`)")
                }
                Self.apply(add, value, to: &settings.administrators)
                // An administrator has the médecin traitant's rights, which no block limits.
                if add { settings.blocked.remove(value) }
            case (.blocked, .organization): Self.apply(add, value, to: &settings.blockedOrganizations)
            case (.blocked, .professional):
                if add && settings.hasFullRights(value) {
                    throw .accessDenied(
                        rule: "settings.full-rights-cannot-be-blocked",
                        explanation:
                            "the médecin traitant and administrators cannot be blocked; name another médecin traitant or revoke the administrator first"
                    )
                }
                Self.apply(add, value, to: &settings.blocked)
            }
        case .professionalSeen(let rpps):
            settings.professionalsSeen.insert(rpps.value)
        }
        return settings
    }

    private static func apply(_ add: Bool, _ member: String, to set: inout Set<String>) {
        if add { set.insert(member) } else { set.remove(member) }
    }
}

/// A change in a dossier's life.
public enum LifecycleChange: Sendable, Equatable {
    case close(reason: DossierLifecycle.ClosureReason, deletionRequested: Bool)
    case reopen
    case hold(reason: String)
    case releaseHold

    /// The lifecycle after the change at `now`, or why it is illegal.
    public func applied(to lifecycle: DossierLifecycle, at now: Int64) throws(LifecycleError) -> DossierLifecycle {
        switch self {
        case .close(let reason, let deletion): try lifecycle.closing(at: now, reason: reason, deletionRequested: deletion)
        case .reopen: try lifecycle.reopening()
        case .hold(let reason): try lifecycle.holding(reason: reason)
        case .releaseHold: try lifecycle.releasingHold()
        }
    }
}

/// A change to a document that keeps its content. A document is all its versions: the change
/// applies to each, or the older ones would stay readable through the history.
public enum DocumentChange: Sendable, Equatable {
    /// Mask (true) or unmask (false) for professionals.
    case mask(Bool)
    /// Release a document hidden from the patient, at the given time.
    case release(at: Int64)
    /// Delete logically: the version stays until the dossier is purged.
    case delete

    /// Applies the change to one version of the chain, given the version the caller named.
    public func apply(to version: inout DocumentVersionState, named target: DocumentVersionState) throws(Refusal) {
        switch self {
        case .mask(let masked):
            version.masked = masked
        case .release(let time):
            guard version.hiddenFromPatient || !version.isNamed else {
                throw .conflict("the document is not hidden from the patient")
            }
            if version.hiddenFromPatient && version.releasedAt == nil { version.releasedAt = time }
        case .delete:
            guard target.status == .current else {
                throw .conflict("the document is \(target.status.rawValue); only the current version can be deleted")
            }
            version.status = .deleted
        }
    }
}

/// What a document change reads and writes of one version.
public struct DocumentVersionState: Sendable, Equatable {
    /// Whether this is the version the caller named.
    public var isNamed: Bool
    public var status: DocumentStatus
    public var masked: Bool
    public var hiddenFromPatient: Bool
    public var releasedAt: Int64?

    public init(isNamed: Bool, status: DocumentStatus, masked: Bool, hiddenFromPatient: Bool, releasedAt: Int64?) {
        self.isNamed = isNamed
        self.status = status
        self.masked = masked
        self.hiddenFromPatient = hiddenFromPatient
        self.releasedAt = releasedAt
    }
}
