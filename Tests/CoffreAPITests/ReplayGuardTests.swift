import CoffreAPI
import CoffreDomain
import Testing

/// The rules of `AssertionReplayGuard`, on a clock the test sets.
@Suite struct ReplayGuardTests {
    let start: Int64 = 1_800_000_000

    func claims(jti: String, issuer: String = "dev", issuedAt: Int64? = nil, lifetime: Int64 = 300) -> AssertionClaims {
        let iat = issuedAt ?? start
        return AssertionClaims(
            iss: issuer, sub: "184056312345658", role: .patient, software: "tests", iat: iat, exp: iat + lifetime, jti: jti)
    }

    func code(_ admit: () throws(Problem) -> Void) -> ErrorCode? {
        do {
            try admit()
            return nil
        } catch {
            return error.code
        }
    }

    @Test func anAssertionIsAcceptedOnce() {
        let guard_ = AssertionReplayGuard(startedAt: start)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "a"), now: start) } == nil)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "a"), now: start + 1) } == .assertionReplayed)
        // The same jti under another issuer is another assertion.
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "a", issuer: "portal"), now: start + 1) } == nil)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "b"), now: start + 1) } == nil)
        #expect(guard_.rememberedCount == 3)
    }

    @Test func assertionsIssuedBeforeTheStartAreRefused() {
        let guard_ = AssertionReplayGuard(startedAt: start)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "old", issuedAt: start - 1), now: start) } == .assertionReplayed)
        #expect(guard_.rememberedCount == 0)
    }

    @Test func entriesAreForgottenOnceTheAssertionCouldNoLongerVerify() {
        let guard_ = AssertionReplayGuard(startedAt: start)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "a", lifetime: 60), now: start) } == nil)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "b", lifetime: 600), now: start) } == nil)
        // Still verifiable at exp + skew - 1: still remembered.
        let lastVerifiable = start + 60 + SignedAssertion.clockSkew - 1
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "a", lifetime: 60), now: lastVerifiable) } == .assertionReplayed)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "c"), now: lastVerifiable + 1) } == nil)
        #expect(guard_.rememberedCount == 2)  // "a" forgotten, "b" and "c" kept
        // A long quiet spell, or a clock jump, forgets everything due at once.
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "d", issuedAt: start + 86_400), now: start + 86_400) } == nil)
        #expect(guard_.rememberedCount == 1)
    }

    @Test func aClockSteppingBackLeavesNothingBehind() {
        let guard_ = AssertionReplayGuard(startedAt: start)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "a", issuedAt: start + 100), now: start + 100) } == nil)
        // The clock steps back 90 s: this one could be forgotten at start + 10 + 20 + skew, a
        // second the guard has already walked past.
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "b", lifetime: 20), now: start + 10) } == nil)
        #expect(guard_.rememberedCount == 2)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "c", issuedAt: start + 101), now: start + 101) } == nil)
        #expect(guard_.rememberedCount == 2)  // "b" forgotten, "a" and "c" kept
    }

    @Test func aFullGuardFailsClosed() {
        let guard_ = AssertionReplayGuard(startedAt: start, capacity: 2)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "a", lifetime: 10), now: start) } == nil)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "b", lifetime: 10), now: start) } == nil)
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "c"), now: start) } == .unavailable)
        // Room again once the first two can no longer verify.
        #expect(code { () throws(Problem) in try guard_.admit(claims(jti: "c"), now: start + 10 + SignedAssertion.clockSkew) } == nil)
    }
}
