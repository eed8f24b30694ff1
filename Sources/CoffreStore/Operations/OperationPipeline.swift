public import CoffreDomain
import Foundation
import GRDB
import Logging
import Synchronization
public import NIOCore

/// The one path every operation on a dossier takes, whoever asks (a person through the API, an
/// operator): load the facts, plan (the domain decides, then draws up the changes, the trace
/// entry and the notices), and commit all of it in one transaction. A refusal is committed the
/// same way (its entry, and the access notices an allowed decision owes) and then thrown as
/// the domain's `Refusal`, which the server answers without tracing it again.
public struct OperationPipeline: Sendable {
    public let vault: Vault
    public let planner: OperationPlanner

    public init(vault: Vault, policy: AccessPolicy) {
        self.vault = vault
        self.planner = OperationPlanner(policy: policy, retention: vault.retentionRules)
    }

    /// What a committed operation left.
    public struct Outcome: Sendable {
        public var plan: OperationPlan
        /// The dossier as the operation left it (nil once destroyed).
        public var dossier: DossierRecord?
        /// The document the operation named, as it left it.
        public var document: DocumentRecord?
        /// How many notices an acknowledgement marked.
        public var acknowledged: Int
        /// The dossier the operation destroyed (an opposition).
        public var destroyed: DossierID? = nil
    }

    /// Runs `operation` on the dossier of `ins` for `caller`.
    /// - Throws: `Refusal` (traced), `StoreError`.
    public func perform(_ operation: DossierOperation, on ins: INS, by caller: Caller) async throws -> Outcome {
        let facts = try await load(operation, ins: ins)
        let plan = planner.plan(operation, by: caller, facts: facts.domain)
        if plan.changes.contains(.create) {
            return try await create(plan, ins: ins)
        }
        let report = AppliedChanges()
        try await commit(plan, dossier: facts.dossier, report: report)
        if let refusal = plan.refusal { throw refusal }
        if plan.changes.contains(.destroy), let dossier = facts.dossier {
            try await vault.oppose(dossier)
            return Outcome(plan: plan, dossier: nil, document: nil, acknowledged: 0, destroyed: dossier.id)
        }
        var dossier = facts.dossier
        var document = facts.document?.record
        if plan.changesDossier {
            dossier = try await vault.dossier(for: ins)
            if let id = operation.documentID, let current = dossier { document = try await vault.document(id, in: current) }
        }
        return Outcome(plan: plan, dossier: dossier, document: document, acknowledged: report.acknowledged.withLock { $0 })
    }

    /// Stores a document (`addDocument`) or a new version (`replaceDocument`), streaming
    /// `content` to disk; the row, its trace entry (naming the new document) and its notices
    /// commit together once the content is durable.
    public func store<Content: AsyncSequence<ByteBuffer, any Error>>(
        _ operation: DossierOperation, on ins: INS, by caller: Caller, content: Content, declaredLength: Int64?
    ) async throws -> DocumentRecord {
        let facts = try await load(operation, ins: ins)
        let plan = planner.plan(operation, by: caller, facts: facts.domain)
        guard plan.refusal == nil, let dossier = facts.dossier,
            case .storeDocument(let document, let replacing) = plan.changes.first(where: {
                if case .storeDocument = $0 { true } else { false }
            })
        else {
            try await commit(plan, dossier: facts.dossier, report: nil)
            throw plan.refusal ?? Refusal.invalidRequest("this operation stores no document")
        }
        return try await vault.storeDocument(
            in: dossier, document, content: content, declaredLength: declaredLength, replacing: replacing,
            tracing: TraceIntent(action: plan.action.rawValue, detail: plan.detail), alongside: plan.changes, notices: plan.notices)
    }

    /// Decides and traces a read of a document's content, and opens it. The blob is opened
    /// while the decision is committed: the two waits overlap, nothing of it leaves before the
    /// decision is allowed and durable, and a refusal wins over any error of the opening.
    public func openContent(_ id: DocumentID, on ins: INS, by caller: Caller) async throws -> DocumentContent {
        let operation = DossierOperation.readContent(id)
        let facts = try await load(operation, ins: ins)
        let plan = planner.plan(operation, by: caller, facts: facts.domain)
        guard plan.refusal == nil, let opened = facts.document else {
            try await commit(plan, dossier: facts.dossier, report: nil)
            throw plan.refusal ?? Refusal.documentNotFound()
        }
        let vault = self.vault
        async let opening = { () async -> Result<DocumentContent, StoreError> in
            do throws(StoreError) { return .success(try await vault.openContent(of: opened)) } catch { return .failure(error) }
        }()
        do {
            try await commit(plan, dossier: facts.dossier, report: nil)
        } catch {
            if case .success(let content) = await opening { await content.close() }
            throw error
        }
        return try await opening.get()
    }

    // MARK: Facts

    /// What the store knows that the plan needs.
    struct Facts {
        var dossier: DossierRecord?
        var document: Vault.OpenedDocument?
        var domain: OperationFacts
    }

    func load(_ operation: DossierOperation, ins: INS) async throws(StoreError) -> Facts {
        var dossier: DossierRecord? = nil
        if let row = try vault.index.dossier(insHash: vault.insHash(ins)), row.state != "purging" {
            let (key, fields) = try vault.openDossierRow(row, ins: ins)
            dossier = vault.record(from: row, ins: ins, fields: fields, key: key)
        }
        var document: Vault.OpenedDocument? = nil
        var documents: [DocumentRecord] = []
        if let dossier {
            if let id = operation.documentID {
                do {
                    document = try await vault.openDocument(id, in: dossier)
                } catch  where error.code == .documentNotFound {
                    document = nil
                }
            }
            if operation.needsDocumentList { documents = try await vault.documents(in: dossier) }
        }
        let domain = OperationFacts(
            owner: ins, dossier: dossier?.facts, dossierID: dossier?.id, document: document?.record.facts,
            documentMetadata: document?.record.metadata, documents: documents.map { ($0.id, $0.facts) }, now: vault.clock.now())
        return Facts(dossier: dossier, document: document, domain: domain)
    }

    // MARK: Commit

    /// Writes the plan's trace entry with its changes and notices, in one transaction.
    /// - Parameter durable: the entry must be durable before this returns although the plan
    ///   changes nothing itself (an operation the vault carries out after it).
    func commit(_ plan: OperationPlan, dossier: DossierRecord?, report: AppliedChanges?, durable: Bool = false) async throws {
        var change: (@Sendable (Database) throws -> Void)? = nil
        if let dossier, let key = dossier.key, plan.changesDossier || !plan.notices.isEmpty {
            let vault = self.vault
            change = { db in
                try vault.apply(plan.changes, to: dossier, db, report: report)
                for notice in plan.notices {
                    try VaultIndex.insertNotification(
                        try vault.notificationRow(for: notice, newDocument: nil, dossierID: dossier.id.value, key: key), db)
                }
            }
        }
        try await append(plan, dossier: dossier, change: change, durable: durable)
    }

    /// A new dossier: its row and its first trace entry (sealed under its own key) in one
    /// transaction.
    private func create(_ plan: OperationPlan, ins: INS) async throws -> Outcome {
        let (row, dossier) = try vault.newDossier(for: ins)
        try await append(plan, dossier: dossier) { db in try VaultIndex.insertDossier(row, db) }
        vault.logger.info("dossier created", metadata: ["dossier.id": "\(dossier.id)"])
        return Outcome(plan: plan, dossier: dossier, document: nil, acknowledged: 0)
    }

    private func append(
        _ plan: OperationPlan, dossier: DossierRecord?, change: (@Sendable (Database) throws -> Void)?, durable: Bool = false
    ) async throws {
        do {
            // A read's or a refusal's entry is made durable by batch; a change's before the answer.
            try await vault.appendTrace(
                action: plan.action.rawValue, outcome: plan.outcome, detail: plan.detail, dossier: dossier, change: change,
                durability: change == nil && !durable ? .batched : .beforeReturning)
        } catch let failed as TraceWriter.ChangeFailed {
            // The entry is in the trace; the change it allowed is not (the dossier's state
            // refused it in the transaction, or the disk did).
            switch failed.error {
            case let refusal as Refusal: throw refusal
            case let error as StoreError: throw error
            case let error as DatabaseError where error.resultCode == .SQLITE_FULL:
                throw StoreError(.noSpace, "the disk is full: the change was not made")
            default: throw StoreError(.io, "cannot record the change: \(failed.error)")
            }
        } catch {
            vault.logger.error("trace write failed: the operation was refused", metadata: ["trace.action": "\(plan.action.rawValue)"])
            throw StoreError(.traceUnavailable, "the access could not be traced, so it was refused; retry shortly")
        }
    }
}
