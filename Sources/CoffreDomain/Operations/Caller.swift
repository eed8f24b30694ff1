/// Who is calling, as the server established it: a person by a verified actor assertion, an
/// operator or the retention job by the kernel's word on the socket (`SO_PEERCRED`).
public enum Caller: Sendable, Hashable {
    /// A patient, a representative or a professional, through their software.
    case person(Actor)
    /// Root or a member of the operators' group.
    case `operator`(uid: UInt32)
    /// The daily retention job's user.
    case retentionJob(uid: UInt32)
}

extension Caller {
    /// The single-use assertion the call carried, if a person's did.
    public var assertion: AssertionUse? {
        if case .person(let actor) = self { return actor.assertion }
        return nil
    }
}
