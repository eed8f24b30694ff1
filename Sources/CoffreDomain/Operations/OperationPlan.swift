/// What the pipeline knows before it decides: the dossier as it is, the document the operation
/// names, and the time. Loaded by the store, read by the planner.
public struct OperationFacts: Sendable {
    /// The patient the operation is about.
    public var owner: INS
    /// The dossier, or nil when the patient has none.
    public var dossier: DossierFacts?
    /// Its id (random, so naming it identifies nobody).
    public var dossierID: DossierID?
    /// The document the operation names, if it is in this dossier.
    public var document: DocumentFacts?
    /// That document's metadata as stored (a replacement takes what it does not send from it).
    public var documentMetadata: NewDocument?
    /// Every document of the dossier, when the operation needs them (`needsDocumentList`).
    public var documents: [(id: DocumentID, facts: DocumentFacts)]
    /// The vault clock's time (ms since epoch).
    public var now: Int64

    public init(
        owner: INS, dossier: DossierFacts?, dossierID: DossierID? = nil, document: DocumentFacts? = nil,
        documentMetadata: NewDocument? = nil,
        documents: [(id: DocumentID, facts: DocumentFacts)] = [], now: Int64
    ) {
        self.owner = owner
        self.dossier = dossier
        self.dossierID = dossierID
        self.document = document
        self.documentMetadata = documentMetadata
        self.documents = documents
        self.now = now
    }
}

/// What an operation will do, drawn up before anything is written: the decision, the trace
/// entry that records it, the changes, and the notices owed. The store commits all of it in one
/// transaction, or none of it.
public struct OperationPlan: Sendable, Equatable {
    /// What the trace calls the operation.
    public var action: DossierAction
    /// The access rules' answer.
    public var decision: AccessDecision
    /// Why the operation is refused, if it is (by the rules, or by the dossier's state).
    public var refusal: Refusal?
    /// The trace entry's detail: who, how, which document, which rule, which error.
    public var detail: TraceDetail
    /// The changes, in order; none for a read or a refusal.
    public var changes: [DossierChange]
    /// The notices owed.
    public var notices: [Notice]
    /// The single-use assertion the call came with: its use is recorded with the entry.
    public var assertion: AssertionUse? = nil

    /// How the trace entry records the end of the operation.
    public var outcome: TraceOutcome {
        guard let refusal else { return .allowed }
        if case .accessDenied = refusal { return .denied }
        return decision.isAllowed ? .refused : .denied
    }

    /// Whether the plan changes the dossier (its entry is then durable before the answer;
    /// a read's or a refusal's may be made durable by batch).
    public var changesDossier: Bool { !changes.isEmpty }
}

extension OperationPlan {
    /// The plan of a store whose content never became a document (cut off, too large, the
    /// disk full): the decision stands, with the access notices and the other changes it owes
    /// (the professional reached the dossier), while the document and its notices go; the
    /// entry names the error.
    public func withoutStore(errorCode: String) -> OperationPlan {
        var plan = self
        plan.changes.removeAll { if case .storeDocument = $0 { true } else { false } }
        plan.notices.removeAll { $0.kind == .documentAdded || $0.kind == .documentReplaced }
        plan.detail.errorCode = errorCode
        return plan
    }

    /// The document the plan stores, and the version it replaces, if it stores one.
    public var storedDocument: (document: NewDocument, replacing: DocumentID?)? {
        for change in changes { if case .storeDocument(let document, let replacing) = change { return (document, replacing) } }
        return nil
    }
}
