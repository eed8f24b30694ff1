public import CoffreDomain
import Foundation
import Logging
public import NIOCore

/// The operations that move content: a store streams it in before its commit, a read opens it
/// while its decision commits.
extension OperationPipeline {
    /// Stores a document (`addDocument`) or a new version (`replaceDocument`), streaming
    /// `content` to disk; the row, its trace entry (naming the new document) and its notices
    /// commit together once the content is durable.
    ///
    /// The upload can take minutes: should the dossier change meanwhile, the operation is
    /// decided again on the dossier as it is then, and the content already written is recorded
    /// under that decision, or discarded with a refusal. A store whose content never becomes a
    /// document (cut off, too large) still commits its decision, with the access notices it
    /// owes and the error in its entry.
    public func store<Content: AsyncSequence<ByteBuffer, any Error>>(
        _ operation: DossierOperation, on ins: INS, by caller: Caller, content: Content, declaredLength: Int64?
    ) async throws -> DocumentRecord {
        var facts = try await load(operation, ins: ins)
        var plan = planner.plan(operation, by: caller, facts: facts.domain)
        guard plan.refusal == nil, plan.storedDocument != nil, facts.dossier != nil else {
            try await commitRetrying(operation, by: caller, plan: plan, facts: facts)
            throw plan.refusal ?? Refusal.invalidRequest("this operation stores no document")
        }
        let staged: Vault.StagedBlob
        do {
            staged = try await vault.stageBlob(content, declaredLength: declaredLength)
        } catch {
            try await commitRetrying(operation, by: caller, plan: plan.withoutStore(errorCode: error.code.traceCode), facts: facts)
            throw error
        }
        do {
            for attempt in 1...Self.attempts {
                guard let dossier = facts.dossier, let stored = plan.storedDocument, plan.refusal == nil else {
                    try await commitRetrying(operation, by: caller, plan: plan, facts: facts)
                    throw plan.refusal ?? Refusal.dossierNotFound
                }
                let (row, fields) = try vault.documentRow(for: staged, stored.document, replacing: stored.replacing, in: dossier)
                var traced = plan
                traced.detail.documentID = row.id
                traced.detail.replacedDocumentID = stored.replacing?.value
                do {
                    try await commit(
                        traced, facts: facts, report: nil, also: try vault.recordDocument(row, in: dossier), newDocument: row.id)
                    vault.logger.info(
                        "document stored",
                        metadata: ["dossier.id": "\(dossier.id)", "document.id": "\(row.id)", "document.size": "\(row.size)"])
                    return try vault.record(from: row, fields: fields)
                } catch is StaleDecision where attempt < Self.attempts {
                    facts = try await load(operation, ins: ins)
                    plan = planner.plan(operation, by: caller, facts: facts.domain)
                }
            }
            throw Self.keptChanging
        } catch {
            await vault.discard(staged)
            if error is StaleDecision { throw Self.keptChanging }
            throw error
        }
    }

    /// Commits a plan that stores nothing (a refusal, or a store that failed before its
    /// commit), deciding again if the dossier changed under a plan that changes it.
    private func commitRetrying(_ operation: DossierOperation, by caller: Caller, plan: OperationPlan, facts: Facts) async throws {
        var (plan, facts) = (plan, facts)
        for _ in 1...Self.attempts {
            do {
                return try await commit(plan, facts: facts, report: nil)
            } catch is StaleDecision {
                facts = try await load(operation, ins: facts.domain.owner)
                let errorCode = plan.detail.errorCode
                plan = planner.plan(operation, by: caller, facts: facts.domain)
                if plan.refusal == nil, let errorCode { plan = plan.withoutStore(errorCode: errorCode) }
            }
        }
        throw Self.keptChanging
    }

    /// Decides and traces a read of a document's content, and opens it. The blob is opened
    /// while the decision is committed: the two waits overlap, nothing of it leaves before the
    /// decision is allowed and committed, and a refusal wins over any error of the opening.
    public func openContent(_ id: DocumentID, on ins: INS, by caller: Caller) async throws -> DocumentContent {
        let operation = DossierOperation.readContent(id)
        let facts = try await load(operation, ins: ins)
        let plan = planner.plan(operation, by: caller, facts: facts.domain)
        guard plan.refusal == nil, let opened = facts.document else {
            try await commit(plan, facts: facts, report: nil)
            throw plan.refusal ?? Refusal.documentNotFound()
        }
        let vault = self.vault
        async let opening = { () async -> Result<DocumentContent, StoreError> in
            do throws(StoreError) { return .success(try await vault.openContent(of: opened)) } catch { return .failure(error) }
        }()
        do {
            try await commit(plan, facts: facts, report: nil)
        } catch {
            if case .success(let content) = await opening { await content.close() }
            throw error
        }
        return try await opening.get()
    }
}
