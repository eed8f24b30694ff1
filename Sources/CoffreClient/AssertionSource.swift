public import CoffreCrypto
public import CoffreDomain
import Synchronization

/// Where each request's actor assertion comes from. The daemon accepts an assertion once (its
/// `jti` is single-use), so a client that makes several requests needs one per request.
public struct AssertionSource: Sendable {
    private let make: @Sendable () throws(ClientError) -> String

    /// An assertion made by `make` for each request.
    public init(_ make: @escaping @Sendable () throws(ClientError) -> String) {
        self.make = make
    }

    /// A token from real software (`--assertion FILE`): good for one request. The daemon refuses
    /// a second use (`assertion_replayed`, traced as a refusal); a command that needs another
    /// request (`trace --follow`, a trace past one page) stops here instead, saying why.
    public static func token(_ token: String) -> AssertionSource {
        let used = Atomic(false)
        return AssertionSource { () throws(ClientError) -> String in
            guard !used.exchange(true, ordering: .relaxed) else {
                throw ClientError(
                    code: "assertion_used",
                    message: "an --assertion FILE is good for one request and this command needs another; "
                        + "run it with a fresh assertion for each request (or one that needs a single request)",
                    exitCode: ExitStatus.usage)
            }
            return token
        }
    }

    /// A fresh assertion for `actor`, signed with `key`, for every request. `key` lives in locked
    /// memory for as long as the source does.
    public static func minting(
        for actor: ActorSpec, mode: AccessMode, reason: String?, issuer: String, key: Ed25519SigningKey
    ) -> AssertionSource {
        AssertionSource { () throws(ClientError) -> String in
            do {
                return try actor.mint(mode: mode, reason: reason, issuer: issuer, key: key)
            } catch {
                throw ClientError(
                    code: "assertion_failed", message: "cannot sign the assertion: \(error)", exitCode: ExitStatus.serverFailure)
            }
        }
    }

    /// The assertion for the next request.
    func next() throws(ClientError) -> String { try make() }
}
