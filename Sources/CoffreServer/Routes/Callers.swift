import CoffreAPI
import CoffreDomain

extension CoffreRequestContext {
    /// The person a person-level request acts for, verified by `AssertionMiddleware`.
    func person() throws(Problem) -> Caller {
        guard let actor else {
            throw Problem(.assertionMissing, detail: "this call acts for a person: send an actor assertion")
        }
        return .person(actor)
    }

    /// The operator on the other end of an admin request, as the kernel names them
    /// (`OperatorMiddleware` has let only operators through).
    func operatorCaller() async throws(Problem) -> Caller {
        do {
            return .operator(uid: try await peerCredentials().uid)
        } catch {
            throw Problem(.notOperator, detail: "the caller's credentials cannot be read from the socket")
        }
    }
}

extension Problem {
    /// The answer to a refusal the pipeline has traced.
    init(_ refusal: Refusal) {
        self.init(ErrorCode(rawValue: refusal.code) ?? .internalError, detail: refusal.explanation)
    }
}
