public import CoffreDomain

/// Operators' key operations: each is planned (operators only) and its entry made durable
/// before the vault carries it out, like every access (fail closed).
extension OperationPipeline {
    /// Loads the master keys installed since the start.
    public func reloadKeys(by caller: Caller) async throws -> MasterKeyStatus {
        try await traced(.reloadKeys, by: caller)
        return try await vault.reloadMasterKeys()
    }

    /// Starts a rotation to the newest master key (in development mode, made first if none is
    /// newer); the rotation itself runs in the background.
    public func rotateKeys(by caller: Caller, developmentKeyDirectory: String?) async throws -> MasterKeyStatus {
        try await traced(.rotateKeys, by: caller)
        return try await vault.startRotation(developmentKeyDirectory: developmentKeyDirectory)
    }

    /// Retires a master key version nothing uses any more.
    public func retireKey(_ version: UInt32, by caller: Caller) async throws -> MasterKeyStatus {
        try await traced(.retireKey(version), by: caller)
        return try await vault.retireMasterKey(version: version)
    }

    /// Gives the dossier of `ins` a new key; its entry goes to that dossier's trace.
    public func rekey(_ ins: INS, reencrypt: Bool, by caller: Caller) async throws -> RekeyResult {
        let facts = try await load(.readDossier, ins: ins)
        var plan = planner.plan(.rekeyDossier(reencrypt: reencrypt), by: caller)
        guard facts.dossier != nil else {
            if plan.refusal == nil {
                plan.refusal = .dossierNotFound
                plan.detail.errorCode = Refusal.dossierNotFound.code
            }
            try await commit(plan, facts: nil, report: nil, durable: true)
            throw plan.refusal ?? Refusal.dossierNotFound
        }
        try await commit(plan, facts: facts, report: nil, durable: true)
        if let refusal = plan.refusal { throw refusal }
        return try await vault.rekeyDossier(for: ins, reencrypt: reencrypt)
    }

    private func traced(_ operation: VaultOperation, by caller: Caller) async throws {
        let plan = planner.plan(operation, by: caller)
        try await commit(plan, facts: nil, report: nil, durable: true)
        if let refusal = plan.refusal { throw refusal }
    }
}
