/// A request refused before any access decision (no valid assertion, an unknown route, a
/// malformed request or HTTP framing), as the trace records it: what was asked and why it was
/// refused, never who asked (nothing verified says who).
public struct AnonymousRefusal: Sendable, Hashable {
    /// What was attempted: the method and route template (`GET /v1/patients/{ins}/dossier`),
    /// `unmatched`, or `HTTP framing`.
    public var action: String
    /// The stable error code answered.
    public var errorCode: String
    /// The role the refused request claimed, if it carried a verified assertion.
    public var role: String?
    /// Refused on the server's side (5xx) rather than for what was sent.
    public var serverSide: Bool

    public init(action: String, errorCode: String, role: String? = nil, serverSide: Bool = false) {
        self.action = action
        self.errorCode = errorCode
        self.role = role
        self.serverSide = serverSide
    }

    /// The detail of the entry that stands for `count` of them.
    public func detail(count: Int) -> TraceDetail {
        var detail = TraceDetail(actorRole: role, errorCode: errorCode)
        detail.count = count
        return detail
    }
}

/// Refusals counted by kind until they are written: one trace entry per kind and interval
/// instead of one per request, so that a flood of refused requests, which anyone who can reach
/// the socket can send, cannot grow the trace without bound. Pure; the daemon drains it on a
/// timer and at its stop.
public struct RefusalTally: Sendable {
    private var counts: [AnonymousRefusal: Int] = [:]
    private var order: [AnonymousRefusal] = []

    public init() {}

    /// Counts one refusal.
    public mutating func add(_ refusal: AnonymousRefusal) {
        if counts[refusal] == nil { order.append(refusal) }
        counts[refusal, default: 0] += 1
    }

    /// Whether nothing is counted.
    public var isEmpty: Bool { order.isEmpty }

    /// Every kind counted, in the order first seen, with its count; the tally is empty after.
    public mutating func drain() -> [(refusal: AnonymousRefusal, count: Int)] {
        defer {
            counts = [:]
            order = []
        }
        return order.map { ($0, counts[$0] ?? 0) }
    }
}
