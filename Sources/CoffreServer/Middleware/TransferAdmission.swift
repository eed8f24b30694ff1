import CoffreAPI
import CoffreDomain
import Hummingbird
import Synchronization

/// How many transfers (uploads and downloads of document content) may be in flight: for the
/// whole daemon, and for one caller.
///
/// Each transfer holds key-arena slots (a dossier key, a document key, a stream state) and
/// memory until it ends. The caps make sure that no caller, and no crowd of callers, can take
/// them all: a newcomer past a cap is refused at once with `503 busy` before it holds
/// anything, and a transfer already admitted is never refused. With `TransferRateHandler`
/// closing transfers that crawl, slots held by a slow client come back within a window.
final class TransferLimiter: Sendable {
    let total: Int
    let perCaller: Int
    private let state = Mutex<(total: Int, byCaller: [String: Int])>((0, [:]))

    init(total: Int, perCaller: Int) {
        self.total = total
        self.perCaller = perCaller
    }

    /// A place for one more transfer of `caller`, released when the returned ticket goes; or
    /// the refusal, naming which cap was reached.
    func admit(_ caller: String) throws(Problem) -> TransferTicket {
        let refusal: Problem? = state.withLock { state in
            guard state.total < total else {
                return Problem(.busy, detail: "the vault has \(total) transfers in flight, its most; retry in a moment")
            }
            guard state.byCaller[caller, default: 0] < perCaller else {
                return Problem(
                    .busy, detail: "this caller has \(perCaller) transfers in flight, the most one caller may; retry once one ends")
            }
            state.total += 1
            state.byCaller[caller, default: 0] += 1
            return nil
        }
        if let refusal { throw refusal }
        return TransferTicket { [self] in release(caller) }
    }

    /// Transfers in flight now.
    var inFlight: Int { state.withLock { $0.total } }

    private func release(_ caller: String) {
        state.withLock { state in
            state.total -= 1
            let left = state.byCaller[caller, default: 1] - 1
            state.byCaller[caller] = left > 0 ? left : nil
        }
    }
}

/// A transfer's place in the limiter, given back when the last reference to it goes: when the
/// handler returns, or, for a streamed download, once its body is written or dropped.
final class TransferTicket: Sendable {
    private let release: @Sendable () -> Void

    init(release: @escaping @Sendable () -> Void) { self.release = release }

    deinit { release() }
}

/// Admits each transfer route's request through the limiter, keyed by the verified caller (its
/// issuer and its person), and hands the ticket to the route in the context.
struct TransferAdmission: RouterMiddleware {
    typealias Context = CoffreRequestContext
    let limiter: TransferLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Transfer routes are person-level: no actor here would be a route mounted wrongly.
        guard let actor = context.actor else {
            throw Problem(.assertionMissing, detail: "send `Authorization: \(CoffreHeader.authorizationScheme) <assertion>`")
        }
        var context = context
        context.transfer = try limiter.admit(Self.callerKey(actor))
        return try await next(request, context)
    }

    static func callerKey(_ actor: Actor) -> String {
        switch actor.subject {
        case .patient(let ins): "\(actor.issuer)/patient/\(ins.value)"
        case .representative(let ins, _): "\(actor.issuer)/representative/\(ins.value)"
        case .professional(let rpps, _, _, _): "\(actor.issuer)/professional/\(rpps.value)"
        }
    }
}
