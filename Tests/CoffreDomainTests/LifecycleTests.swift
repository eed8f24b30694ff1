import CoffreDomain
import Testing

/// The dossier's state machine as a table, and the retention dates.
@Suite struct DossierLifecycleTests {
    static let day = RetentionRules.day
    static let rules = RetentionRules.legal
    static let created: Int64 = 1_900_000_000_000

    enum Step: Sendable, CustomTestStringConvertible {
        case close(deletion: Bool, death: Bool), reopen, hold(String), release
        var testDescription: String {
            switch self {
            case .close(let deletion, let death): "close\(deletion ? " --delete" : "")\(death ? " --death" : "")"
            case .reopen: "reopen"
            case .hold: "hold"
            case .release: "release"
            }
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var steps: [Step]
        /// The error code the last step must fail with, or nil when every step succeeds.
        var failsWith: String?
        var state: DossierLifecycle.State
        var testDescription: String { steps.map(\.testDescription).joined(separator: " → ") + (failsWith.map { " ✗ \($0)" } ?? "") }
    }

    static let cases: [Case] = [
        Case(steps: [.close(deletion: false, death: false)], state: .closed),
        Case(steps: [.close(deletion: false, death: false), .reopen], state: .active),
        Case(
            steps: [.close(deletion: false, death: false), .close(deletion: true, death: false)], failsWith: "dossier_closed",
            state: .closed),
        Case(steps: [.reopen], failsWith: "dossier_not_closed", state: .active),
        Case(steps: [.close(deletion: false, death: true), .reopen], failsWith: "dossier_closed_on_death", state: .closed),
        Case(steps: [.hold("enquête"), .close(deletion: false, death: false)], state: .closed),
        Case(steps: [.hold("   ")], failsWith: "hold_reason_missing", state: .active),
        Case(steps: [.release], failsWith: "not_held", state: .active),
        Case(steps: [.hold("x"), .release, .release], failsWith: "not_held", state: .active),
    ]

    @Test(arguments: cases)
    func transitions(_ testCase: Case) throws {
        var lifecycle = DossierLifecycle(createdAt: Self.created)
        var failure: LifecycleError? = nil
        for (index, step) in testCase.steps.enumerated() {
            do throws(LifecycleError) {
                switch step {
                case .close(let deletion, let death):
                    lifecycle = try lifecycle.closing(
                        at: Self.created + Self.day, reason: death ? .death : .patientRequest, deletionRequested: deletion)
                case .reopen: lifecycle = try lifecycle.reopening()
                case .hold(let reason): lifecycle = try lifecycle.holding(reason: reason)
                case .release: lifecycle = try lifecycle.releasingHold()
                }
            } catch {
                #expect(index == testCase.steps.count - 1, "only the last step may fail")
                failure = error
            }
        }
        #expect(failure?.code == testCase.failsWith)
        #expect(lifecycle.state == testCase.state)
    }

    @Test func retentionDatesAndVerdicts() throws {
        let closedAt = Self.created + 10 * Self.day
        let closed = try DossierLifecycle(createdAt: Self.created).closing(at: closedAt, reason: .patientRequest, deletionRequested: false)
        let tenYears = closedAt + Self.rules.retention
        #expect(closed.purgeDate(rules: Self.rules) == tenYears)
        #expect(closed.retentionVerdict(at: tenYears - Self.day, rules: Self.rules) == .keep)
        #expect(closed.retentionVerdict(at: tenYears, rules: Self.rules) == .purge("retention-over"))
        #expect(try closed.holding(reason: "x").retentionVerdict(at: tenYears, rules: Self.rules) == .held)
        let deletion = try DossierLifecycle(createdAt: Self.created).closing(at: closedAt, reason: .patientRequest, deletionRequested: true)
        #expect(deletion.retentionVerdict(at: closedAt + 89 * Self.day, rules: Self.rules) == .keep)
        #expect(deletion.retentionVerdict(at: closedAt + 90 * Self.day, rules: Self.rules) == .purge("deletion-request"))
        #expect(
            DossierLifecycle(createdAt: Self.created).retentionVerdict(at: .max / 2, rules: Self.rules) == .keep,
            "an active dossier is never purged")
    }

    @Test func oppositionWindow() throws {
        let lifecycle = DossierLifecycle(createdAt: Self.created)
        try lifecycle.checkOpposition(at: Self.created + 29 * Self.day, rules: Self.rules)
        #expect(throws: LifecycleError.self) { try lifecycle.checkOpposition(at: Self.created + 30 * Self.day, rules: Self.rules) }
        let sixWeeks = RetentionRules(
            retention: Self.rules.retention, deletionDelay: Self.rules.deletionDelay, oppositionWindow: 42 * Self.day)
        try lifecycle.checkOpposition(at: Self.created + 41 * Self.day, rules: sixWeeks)
        let closed = try lifecycle.closing(at: Self.created, reason: .patientRequest, deletionRequested: false)
        #expect(throws: LifecycleError.self) { try closed.checkOpposition(at: Self.created, rules: Self.rules) }
        let held = try lifecycle.holding(reason: "enquête")
        let error = #expect(throws: LifecycleError.self) { try held.checkOpposition(at: Self.created, rules: Self.rules) }
        #expect(error?.code == "dossier_held")
    }
}
