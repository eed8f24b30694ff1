public import CoffreDomain

extension OperationPipeline {
    /// Writes refusals made before any access decision, counted by kind: one entry per kind
    /// (dossier-less, so nothing in it identifies anyone), durable by batch like any refusal.
    public func recordRefusals(_ refusals: [(refusal: AnonymousRefusal, count: Int)]) async throws {
        for (refusal, count) in refusals {
            try await vault.appendTrace(
                action: refusal.action, outcome: refusal.serverSide ? .failed : .refused, detail: refusal.detail(count: count),
                dossier: nil, change: nil, durability: .batched)
        }
    }
}
