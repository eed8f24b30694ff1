import CoffreCrypto
public import CoffreDomain
import Synchronization

/// Makes every actor assertion single-use: the `jti` of each accepted assertion is remembered
/// until the assertion could no longer pass `SignedAssertion.verify` (its expiry plus the clock
/// skew), and a second request carrying it is refused with `assertion_replayed`.
///
/// This is RFC 7523's rule for signed client assertions: software mints one per request (the
/// `coffre` client does), so a token copied from a log, a proxy or a core dump buys nothing.
///
/// What is remembered lives in this daemon's memory. Across a restart two rules take over:
/// - the daemon refuses assertions issued (by the issuer's clock, to the second) before the
///   first second it serves in, which comes after the second the last run served its last
///   request in (the clean stop's; after an unclean stop, this start's): every assertion an
///   earlier run accepted with `iat` not ahead of its clock is refused;
/// - an assertion issued ahead of the daemon's clock (within the allowed skew) could pass that
///   barrier, so its use is recorded in the index with the operation it allowed (`use(of:)`),
///   until it expires, and the next run refuses it there.
/// Software that mints one assertion per request, as `coffre` does, never meets either.
public final class AssertionReplayGuard: Sendable {
    /// 128 bits of SHA-256(issuer, 0, jti): every entry has the same small size whatever the
    /// issuer sends, and two different assertions never collide in practice.
    struct Fingerprint: Hashable {
        let high: UInt64
        let low: UInt64
    }

    struct State {
        var seen: Set<Fingerprint> = []
        /// Fingerprints by the second from which they can be forgotten.
        var forgettableAt: [Int64: [Fingerprint]] = [:]
        /// Every second up to this one has been forgotten.
        var forgottenThrough: Int64
    }

    private let state: Mutex<State>
    /// Assertions issued before this second (the daemon's start) are refused.
    public let notIssuedBefore: Int64
    /// Most assertions remembered at once (about 40 bytes each). Past it the daemon refuses new
    /// ones with `unavailable` rather than forget one early: failing closed. At 1,000,000 it takes
    /// over 3,000 requests a second with five-minute assertions to reach it.
    public let capacity: Int

    /// - Parameters:
    ///   - startedAt: the first second the daemon serves in, since the epoch (real clock):
    ///     assertions issued before it are refused.
    ///   - capacity: the most assertions remembered at once.
    public init(startedAt: Int64, capacity: Int = 1_000_000) {
        self.notIssuedBefore = startedAt
        self.capacity = capacity
        self.state = Mutex(State(forgottenThrough: startedAt))
    }

    /// Accepts `claims` once: records its `jti`, or refuses it if it was seen, was issued before
    /// the daemon started, or cannot be remembered. Call it only for assertions that verified.
    public func admit(_ claims: AssertionClaims, now: Int64) throws(Problem) {
        guard claims.iat >= notIssuedBefore else {
            throw Problem(
                .assertionReplayed,
                detail: "the assertion was issued before the daemon last started and may have been used already; mint a new one")
        }
        let fingerprint = Self.fingerprint(issuer: claims.iss, jti: claims.jti)
        // Forgettable once `now - clockSkew < exp` can no longer hold.
        let forgettableAt = claims.exp + SignedAssertion.clockSkew
        let verdict: Problem? = state.withLock { state in
            Self.forget(through: now, in: &state)
            guard !state.seen.contains(fingerprint) else {
                return Problem(
                    .assertionReplayed, detail: "this assertion was already used; assertions are single-use (mint one per request)")
            }
            guard state.seen.count < capacity else {
                return Problem(.unavailable, detail: "too many assertions in flight to remember; retry in a few seconds")
            }
            state.seen.insert(fingerprint)
            // Never in a second already walked past (the clock stepped back): it would stay.
            state.forgettableAt[max(forgettableAt, state.forgottenThrough + 1), default: []].append(fingerprint)
            return nil
        }
        if let verdict { throw verdict }
    }

    /// What the vault records of an admitted assertion (its fingerprint, and when it can no
    /// longer verify), so that daemons sharing the index refuse it too.
    public static func use(of claims: AssertionClaims) -> AssertionUse {
        let fingerprint = fingerprint(issuer: claims.iss, jti: claims.jti)
        let bytes = [fingerprint.high, fingerprint.low].flatMap { word in
            (0..<8).reversed().map { UInt8(truncatingIfNeeded: word >> ($0 * 8)) }
        }
        return AssertionUse(fingerprint: bytes, forgettableAt: claims.exp + SignedAssertion.clockSkew)
    }

    /// How many assertions are remembered now.
    public var rememberedCount: Int { state.withLock { $0.seen.count } }

    private static func forget(through now: Int64, in state: inout State) {
        guard now > state.forgottenThrough else { return }
        let elapsed = now - state.forgottenThrough
        if elapsed <= Int64(state.forgettableAt.count) {
            for second in (state.forgottenThrough + 1)...now {
                if let fingerprints = state.forgettableAt.removeValue(forKey: second) {
                    for fingerprint in fingerprints { state.seen.remove(fingerprint) }
                }
            }
        } else {
            // A long quiet spell (or a clock jump): fewer buckets than seconds to walk.
            for second in state.forgettableAt.keys where second <= now {
                for fingerprint in state.forgettableAt.removeValue(forKey: second) ?? [] { state.seen.remove(fingerprint) }
            }
        }
        state.forgottenThrough = now
    }

    static func fingerprint(issuer: String, jti: String) -> Fingerprint {
        let digest = SHA256Hasher.hash(Array(issuer.utf8) + [0] + Array(jti.utf8))
        func word(_ offset: Int) -> UInt64 {
            digest[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
        }
        return Fingerprint(high: word(0), low: word(8))
    }
}
