public import CoffreDomain
import Foundation
import Logging
import Synchronization

/// The one path every operation on a dossier takes, whoever asks (a person through the API, an
/// operator): load the facts, plan (the domain decides, then draws up the changes, the trace
/// entry and the notices), and commit all of it in one transaction. A refusal is committed the
/// same way (its entry, and the access notices an allowed decision owes) and then thrown as
/// the domain's `Refusal`, which the server answers without tracing it again.
///
/// A change commits only if what it was decided on is still as its facts were loaded, read
/// again in the commit's transaction: the dossier's row (its `revision`) and the document the
/// operation names (its row). Otherwise nothing of it is written and the operation is decided
/// again on the dossier as it now is. So every change is decided on the state it applies to,
/// whichever daemon or request changed it in between; stores of new documents to one dossier
/// do not overtake one another.
public struct OperationPipeline: Sendable {
    public let vault: Vault
    public let planner: OperationPlanner
    /// How often an operation is decided again when its dossier changed before its commit.
    static let attempts = 8

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

        // An allowed operation found its dossier and its document; should either be gone when
        // the answer is drawn up, another operation destroyed it meanwhile (an opposition, a
        // purge): the operation's own entry is in the trace, and the answer says it is gone.

        /// The dossier as the operation left it.
        public func dossierLeft() throws(StoreError) -> DossierRecord {
            guard let dossier else { throw StoreError(.dossierNotFound, "the dossier was destroyed meanwhile") }
            return dossier
        }

        /// The document the operation named, as it left it.
        public func documentLeft() throws(StoreError) -> DocumentRecord {
            guard let document else { throw StoreError(.documentNotFound, "the document was destroyed meanwhile") }
            return document
        }
    }

    /// Runs `operation` on the dossier of `ins` for `caller`.
    /// - Throws: `Refusal` (traced), `StoreError`.
    public func perform(_ operation: DossierOperation, on ins: INS, by caller: Caller) async throws -> Outcome {
        for _ in 1...Self.attempts {
            do {
                return try await performOnce(operation, on: ins, by: caller)
            } catch is StaleDecision {
                continue
            }
        }
        throw Self.keptChanging
    }

    private func performOnce(_ operation: DossierOperation, on ins: INS, by caller: Caller) async throws -> Outcome {
        let facts = try await load(operation, ins: ins)
        let plan = planner.plan(operation, by: caller, facts: facts.domain)
        if plan.changes.contains(.create) {
            return try await create(plan, ins: ins)
        }
        let report = AppliedChanges()
        try await commit(plan, facts: facts, report: report)
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

    static let keptChanging = StoreError(.conflict, "the dossier kept changing while this operation ran; nothing was changed, retry")

    // MARK: Facts

    /// What the store knows that the plan needs.
    struct Facts {
        var dossier: DossierRecord?
        /// The dossier's revision when its row was read.
        var revision: Int64?
        var document: Vault.OpenedDocument?
        var domain: OperationFacts
    }

    /// Loads the facts of `operation`. A dossier whose rows fail their checks (`DossierSeal`)
    /// throws an integrity error: it is not served, and the server traces the refusal.
    func load(_ operation: DossierOperation, ins: INS) async throws(StoreError) -> Facts {
        var dossier: DossierRecord? = nil
        var revision: Int64? = nil
        var document: Vault.OpenedDocument? = nil
        var documents: [DocumentRecord] = []
        // The dossier's row and the document named, in one snapshot, checked against the seal.
        if let checked = try await vault.checkedDossier(.insHash(vault.insHash(ins)), document: operation.documentID?.value) {
            let (key, fields) = try vault.openDossierRow(checked.row, ins: ins)
            let opened = vault.record(from: checked.row, ins: ins, fields: fields, key: key)
            if let row = checked.document { document = try vault.openedDocument(row, of: checked.row, key: key) }
            if operation.needsDocumentList { documents = try await vault.documents(in: opened) }
            (dossier, revision) = (opened, checked.row.revision)
        }
        let domain = OperationFacts(
            owner: ins, dossier: dossier?.facts, dossierID: dossier?.id, document: document?.record.facts,
            documentMetadata: document?.record.metadata, documents: documents.map { ($0.id, $0.facts) }, now: vault.clock.now())
        return Facts(dossier: dossier, revision: revision, document: document, domain: domain)
    }

    // MARK: Commit

    /// Writes the plan's trace entry with its changes and notices, in one transaction. A plan
    /// that changes the dossier commits only if the dossier is still at the revision its facts
    /// were read at, and the document it names as it was read; otherwise this throws
    /// `StaleDecision` and nothing is written.
    /// - Parameters:
    ///   - also: a change of the operation's own, written with the others (a document's row).
    ///   - newDocument: the id of the document the operation stores, which its notices name.
    ///   - durable: the entry must be durable before this returns although the plan changes
    ///     nothing itself (an operation the vault carries out after it).
    func commit(
        _ plan: OperationPlan, facts: Facts?, report: AppliedChanges?, also: TraceWriter.Change? = nil, newDocument: String? = nil,
        durable: Bool = false
    ) async throws {
        var change: TraceWriter.Change? = nil
        let dossier = facts?.dossier
        if let dossier, let key = dossier.key, plan.changesDossier || !plan.notices.isEmpty || also != nil {
            let (vault, revision) = (self.vault, facts?.revision)
            let notices = try plan.notices.map { notice throws(StoreError) in
                try vault.notificationRow(for: notice, newDocument: newDocument, dossierID: dossier.id.value, key: key)
            }
            let named = facts?.document?.row
            change = { transaction in
                if plan.changesDossier || also != nil {
                    guard let current = try transaction.dossier(id: dossier.id.value), current.revision == revision else {
                        throw StaleDecision()
                    }
                    // A version changes every version of its document: the named one shows it.
                    if let named, try transaction.document(id: named.id, dossierID: named.dossierId)?.sealed != named.sealed {
                        throw StaleDecision()
                    }
                }
                try also?(transaction)
                try vault.apply(plan.changes, to: dossier, transaction, report: report)
                for notice in notices { try transaction.insert(notification: notice) }
            }
        }
        try await append(plan, dossier: dossier, change: change, durable: durable)
    }

    /// A new dossier: its row and its first trace entry (sealed under its own key) in one
    /// transaction. A patient given a dossier by another request meanwhile: decided again.
    private func create(_ plan: OperationPlan, ins: INS) async throws -> Outcome {
        let (row, dossier) = try vault.newDossier(for: ins)
        try await append(plan, dossier: dossier) { transaction in
            guard try transaction.dossier(insHash: row.insHash) == nil else { throw StaleDecision() }
            try transaction.insert(dossier: row)
        }
        vault.logger.info("dossier created", metadata: ["dossier.id": "\(dossier.id)"])
        return Outcome(plan: plan, dossier: dossier, document: nil, acknowledged: 0)
    }

    private func append(_ plan: OperationPlan, dossier: DossierRecord?, change: TraceWriter.Change?, durable: Bool = false) async throws {
        do {
            // A read's or a refusal's entry is made durable by batch; a change's before the answer.
            try await vault.appendTrace(
                action: plan.action.rawValue, outcome: plan.outcome, detail: plan.detail, dossier: dossier, change: change,
                assertion: plan.assertion, durability: change == nil && !durable ? .batched : .beforeReturning)
        } catch let stale as StaleDecision {
            throw stale
        } catch is Replayed {
            throw StoreError(.assertionReplayed, "the index has recorded this assertion's use already")
        } catch let failed as TraceWriter.ChangeFailed {
            // The entry is in the trace; the change it allowed is not (the disk refused it, or
            // the index's own constraints did).
            switch failed.error {
            case let refusal as Refusal: throw refusal
            case let error as StoreError: throw error
            default: throw StoreError(.io, "cannot record the change: \(failed.error)")
            }
        } catch {
            vault.logger.error(
                "trace write failed: the operation was refused", metadata: ["trace.action": "\(plan.action.rawValue)", "error": "\(error)"])
            throw StoreError(.traceUnavailable, "the access could not be traced, so it was refused; retry shortly")
        }
    }
}
