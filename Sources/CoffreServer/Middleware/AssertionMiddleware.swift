import CoffreAPI
import CoffreDomain
import Foundation
import Hummingbird

/// Verifies the signed actor assertion of a person-level request and puts the actor in the
/// context. Missing, malformed, forged, expired, unknown-issuer and replayed assertions are
/// refused here, before any route runs.
struct AssertionMiddleware: RouterMiddleware {
    typealias Context = CoffreRequestContext
    let trust: @Sendable () -> TrustStore
    let replayGuard: AssertionReplayGuard

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw Problem(.assertionMissing, detail: "send `Authorization: \(CoffreHeader.authorizationScheme) <assertion>`")
        }
        let prefix = CoffreHeader.authorizationScheme + " "
        guard header.hasPrefix(prefix) else {
            throw Problem(.assertionMalformed, detail: "the Authorization scheme must be \(CoffreHeader.authorizationScheme)")
        }
        // Lifetimes are checked against the real clock, never the development clock.
        let now = Int64(Date().timeIntervalSince1970)
        var (actor, claims) = try SignedAssertion.verify(String(header.dropFirst(prefix.count)), trust: trust(), now: now)
        // Only an assertion that verified is remembered: forged ones cannot fill the memory.
        try replayGuard.admit(claims, now: now)
        // Remembered here. One issued ahead of this clock could outlive a restart's barrier
        // (assertions issued before the start are refused): that one is also recorded in the
        // index with the operation it allows, so that the next run refuses it too. Assertions
        // minted as they are sent (iat not ahead) cost no write.
        if claims.iat > now { actor.assertion = AssertionReplayGuard.use(of: claims) }
        var context = context
        context.actor = actor
        do {
            return try await next(request, context)
        } catch let refusal as Refusal {
            throw refusal
        } catch {
            // Refused after the assertion verified (a malformed path or body): the refusal is
            // recorded with the role the verified actor claimed (the outer context has none).
            throw RefusedAfterAssertion(role: actor.role, error: error)
        }
    }
}

/// An error of a request whose assertion verified, with the role it claimed.
struct RefusedAfterAssertion: Error {
    let role: Role
    let error: any Error
}

/// Lets through only operators, as the kernel identifies them: root, members of the configured
/// operator group, and in development mode the daemon's own user.
struct OperatorMiddleware: RouterMiddleware {
    typealias Context = CoffreRequestContext
    let operatorGroupID: UInt32?
    let developmentUserID: UInt32?
    /// One more user allowed on these routes only (the retention job's).
    var alsoAllowed: UInt32? = nil

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let peer: PeerCredentials
        do {
            peer = try await context.peerCredentials()
        } catch {
            throw Problem(.notOperator, detail: "the caller's credentials cannot be read from the socket")
        }
        let allowed =
            peer.uid == 0 || peer.uid == developmentUserID || peer.uid == alsoAllowed || operatorGroupID.map(peer.isMember(of:)) == true
        guard allowed else {
            throw Problem(.notOperator, detail: "operator calls are for root and the operator group; uid \(peer.uid) is neither")
        }
        return try await next(request, context)
    }
}
