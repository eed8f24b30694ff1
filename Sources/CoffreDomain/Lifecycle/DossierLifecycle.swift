/// The life of a dossier, as the DMP defines it. Pure: the time is passed in.
///
/// ```
/// active ──close──▶ closed ──(retention over, no hold)──▶ purged
///   │  ▲              │
///   │  └───reopen─────┘
///   └──oppose (within the opposition window)──▶ purged at once
/// ```
/// A legal hold (an operator's, with a reason) blocks purge in any state until it is lifted.
public struct DossierLifecycle: Codable, Sendable, Equatable {
    /// Where the dossier stands.
    public enum State: String, Codable, Sendable {
        case active
        case closed
    }

    /// Why a dossier was closed.
    public enum ClosureReason: String, Codable, Sendable {
        case patientRequest = "patient_request"
        case death
    }

    public var state: State = .active
    /// When the dossier was created (ms since epoch).
    public var createdAt: Int64
    /// When it was closed, if it is.
    public var closedAt: Int64?
    public var closureReason: ClosureReason?
    /// The patient asked for deletion on closure: purged after the short delay.
    public var deletionRequested = false
    /// The reason of a legal hold, if one is set.
    public var holdReason: String?

    public init(createdAt: Int64) { self.createdAt = createdAt }

    /// Whether a legal hold is set.
    public var isHeld: Bool { holdReason != nil }
}

/// The durations the law sets, as configuration with the legal values as defaults.
public struct RetentionRules: Sendable, Equatable {
    /// How long a closed dossier is kept (ten years).
    public var retention: Int64
    /// How soon a closure with a deletion request is purged (three months).
    public var deletionDelay: Int64
    /// How long after creation the patient may oppose (one month; regulation says six weeks).
    public var oppositionWindow: Int64

    public static let day: Int64 = 86_400_000
    /// Ten years of 365.25 days, three months of 30 days, one month of 30 days.
    public static let legal = RetentionRules(retention: 3_652 * day + day / 2, deletionDelay: 90 * day, oppositionWindow: 30 * day)

    public init(retention: Int64, deletionDelay: Int64, oppositionWindow: Int64) {
        self.retention = retention
        self.deletionDelay = deletionDelay
        self.oppositionWindow = oppositionWindow
    }
}

/// An illegal transition, with a stable code and words for the patient or operator.
public struct LifecycleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var description: String
}

extension DossierLifecycle {
    /// Closes the dossier (by the patient, or on death), optionally asking for deletion.
    public func closing(at now: Int64, reason: ClosureReason, deletionRequested: Bool) throws(LifecycleError) -> DossierLifecycle {
        guard state == .active else { throw LifecycleError(code: "dossier_closed", description: "the dossier is already closed") }
        var next = self
        next.state = .closed
        next.closedAt = now
        next.closureReason = reason
        next.deletionRequested = deletionRequested
        return next
    }

    /// Reopens a closed dossier during its retention, with everything it held.
    public func reopening() throws(LifecycleError) -> DossierLifecycle {
        guard state == .closed else {
            throw LifecycleError(code: "dossier_not_closed", description: "only a closed dossier can be reopened")
        }
        guard closureReason != .death else {
            throw LifecycleError(code: "dossier_closed_on_death", description: "a dossier closed on the patient's death cannot be reopened")
        }
        var next = self
        next.state = .active
        next.closedAt = nil
        next.closureReason = nil
        next.deletionRequested = false
        return next
    }

    /// Whether the patient may still oppose: an active dossier within the opposition window.
    public func checkOpposition(at now: Int64, rules: RetentionRules) throws(LifecycleError) {
        guard state == .active else {
            throw LifecycleError(code: "dossier_closed", description: "a closed dossier cannot be opposed; it follows its retention")
        }
        guard !isHeld else {
            throw LifecycleError(
                code: "dossier_held", description: "a legal hold blocks the destruction of this dossier; the operator must lift it first")
        }
        guard now < createdAt + rules.oppositionWindow else {
            throw LifecycleError(
                code: "opposition_window_over",
                description:
                    "opposition is possible within \(rules.oppositionWindow / RetentionRules.day) days of creation; close the dossier instead"
            )
        }
    }

    /// Sets a legal hold.
    public func holding(reason: String) throws(LifecycleError) -> DossierLifecycle {
        guard !reason.trimmingWhitespace.isEmpty else {
            throw LifecycleError(code: "hold_reason_missing", description: "a legal hold needs a reason")
        }
        var next = self
        next.holdReason = reason
        return next
    }

    /// Lifts the legal hold.
    public func releasingHold() throws(LifecycleError) -> DossierLifecycle {
        guard isHeld else { throw LifecycleError(code: "not_held", description: "the dossier has no legal hold") }
        var next = self
        next.holdReason = nil
        return next
    }

    /// When the dossier becomes due for purge, if it is closed: ten years after closure, or
    /// the deletion delay after a closure with a deletion request.
    public func purgeDate(rules: RetentionRules) -> Int64? {
        guard state == .closed, let closedAt else { return nil }
        return closedAt + (deletionRequested ? rules.deletionDelay : rules.retention)
    }

    /// What the retention job must do with this dossier at `now`.
    public func retentionVerdict(at now: Int64, rules: RetentionRules) -> RetentionVerdict {
        guard let due = purgeDate(rules: rules) else { return .keep }
        guard now >= due else { return .keep }
        return isHeld ? .held : .purge(deletionRequested ? "deletion-request" : "retention-over")
    }
}

/// The retention job's decision for one dossier.
public enum RetentionVerdict: Sendable, Equatable {
    case keep
    /// Due, but a legal hold blocks the purge.
    case held
    /// Due: purge, for this reason.
    case purge(String)
}

extension String {
    var trimmingWhitespace: Substring {
        var text = self[...]
        while let first = text.first, first.isWhitespace { text = text.dropFirst() }
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return text
    }
}
