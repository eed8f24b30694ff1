/// Problems a check found, in words: the first `limit` are kept and the others only counted.
/// Checks run inside the daemon, and a vault or a trace damaged throughout must not fill its
/// memory with their descriptions; the first ones name where to look.
struct ProblemList: Sendable, Equatable {
    static let defaultLimit = 10_000

    let limit: Int
    private(set) var kept: [String] = []
    private(set) var omitted = 0

    init(limit: Int = Self.defaultLimit) {
        self.limit = limit
    }

    var isEmpty: Bool { kept.isEmpty }

    mutating func append(_ problem: @autoclosure () -> String) {
        if kept.count < limit {
            kept.append(problem())
        } else {
            omitted += 1
        }
    }

    mutating func append(contentsOf problems: [String]) {
        for problem in problems { append(problem) }
    }

    /// The problems kept, then a line counting the others, if any.
    var lines: [String] {
        omitted == 0 ? kept : kept + ["\(omitted) more problem(s) of this check not listed (the first \(limit) are)"]
    }
}
