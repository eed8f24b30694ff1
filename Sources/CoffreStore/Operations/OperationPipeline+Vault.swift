public import CoffreDomain

/// Operators' and the retention job's operations on the vault: each is planned (operators
/// only, or the retention job for its own) and its entry written before the vault carries it
/// out, like every access (fail closed): durable first for what changes anything, by batch for
/// what only reads.
extension OperationPipeline {
    /// Decides and traces `operation`, for work the caller carries out itself once this
    /// returns (a verification streamed as it runs).
    /// - Throws: `Refusal` (traced), `StoreError`.
    public func record(_ operation: VaultOperation, by caller: Caller) async throws {
        let plan = planner.plan(operation, by: caller)
        try await commit(plan, facts: nil, report: nil, durable: !plan.action.onlyReads)
        if let refusal = plan.refusal { throw refusal }
    }

    /// The master key versions, what each wraps, and the rotation.
    public func keyStatus(by caller: Caller) async throws -> MasterKeyStatus {
        try await record(.readKeys, by: caller)
        return try await vault.masterKeyStatus()
    }

    /// Key versions and arena usage; never personal data.
    public func status(by caller: Caller) async throws -> VaultStatus {
        try await record(.readStatus, by: caller)
        return vault.status()
    }

    /// How many dossiers the retention job has to look at now.
    public func retentionDue(by caller: Caller) async throws -> Int {
        try await record(.readRetentionDue, by: caller)
        return try await vault.retentionDue()
    }

    /// Decides and traces a check of the index, every blob (or a sample) and the trace, and
    /// gives the check to run (so that a streamed answer can be refused before its status line).
    public func verification(sample: Int?, by caller: Caller) async throws -> Verification {
        try await record(.verify, by: caller)
        return Verification(vault: vault, sample: sample)
    }
    /// Loads the master keys installed since the start.
    public func reloadKeys(by caller: Caller) async throws -> MasterKeyStatus {
        try await record(.reloadKeys, by: caller)
        return try await vault.reloadMasterKeys()
    }

    /// Starts a rotation to the newest master key (in development mode, made first if none is
    /// newer); the rotation itself runs in the background.
    public func rotateKeys(by caller: Caller, developmentKeyDirectory: String?) async throws -> MasterKeyStatus {
        try await record(.rotateKeys, by: caller)
        return try await vault.startRotation(developmentKeyDirectory: developmentKeyDirectory)
    }

    /// Retires a master key version nothing uses any more.
    public func retireKey(_ version: UInt32, by caller: Caller) async throws -> MasterKeyStatus {
        try await record(.retireKey(version), by: caller)
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
}

/// A check of the vault an operator was allowed, traced already.
public struct Verification: Sendable {
    let vault: Vault
    let sample: Int?

    /// Runs the check, reporting `progress` as blobs are read.
    public func run(
        progress: (@Sendable (_ checked: Int, _ total: Int) async -> Void)? = nil
    ) async throws(StoreError) -> (contents: ContentVerification, trace: TraceVerification) {
        (try await vault.verifyContents(sample: sample, progress: progress), try await vault.verifyTrace())
    }
}
