public import CoffreDomain

/// The reads: each is an operation (decided, traced, its notices sent) followed by what it
/// lets the caller see, filtered by the domain's visibility rules.
extension OperationPipeline {
    /// The dossier, and how many of its current documents the caller may see (a larger count
    /// would reveal masked or hidden documents).
    public func dossier(of ins: INS, by caller: Caller) async throws -> (DossierRecord, visibleDocuments: Int) {
        let dossier = try await performed(.readDossier, on: ins, by: caller)
        return (dossier, try await visibleDocuments(in: dossier, to: caller).count)
    }

    /// The documents of the dossier the caller may see, of `documentClass` if given.
    public func documents(
        of ins: INS, by caller: Caller, documentClass: DocumentClass?, allVersions: Bool
    ) async throws -> [DocumentRecord] {
        let dossier = try await performed(.listDocuments, on: ins, by: caller)
        return try await visibleDocuments(in: dossier, to: caller, allVersions: allVersions).filter {
            documentClass == nil || $0.documentClass == documentClass
        }
    }

    /// The dossier's trace after `seq`, without the entries naming documents the caller may
    /// not see.
    public func trace(of ins: INS, by caller: Caller, after seq: Int64, limit: Int) async throws -> [TraceRecord] {
        let dossier = try await performed(.readTrace, on: ins, by: caller)
        let entries = try await vault.traceEntries(for: dossier, after: seq, limit: limit)
        guard case .person(let actor) = caller else { return entries }
        let all = try await vault.documents(in: dossier, includeSuperseded: true).map { ($0.id, $0.facts) }
        let hidden = planner.policy.hiddenInTrace(from: actor, documents: all, in: dossier.facts, now: vault.clock.now())
        let anonymised = planner.policy.confidentialCare(hiddenFrom: actor, documents: all)?.authors ?? []
        guard !hidden.isEmpty || !anonymised.isEmpty else { return entries }
        func names(_ id: String?) -> Bool { id.flatMap(DocumentID.init).map(hidden.contains) ?? false }
        return entries.compactMap { entry in
            guard let detail = entry.detail else { return entry }
            if names(detail.documentID) || names(detail.replacedDocumentID) { return nil }
            guard let actorID = detail.actorID, detail.actorRole == "professional", anonymised.contains(actorID) else { return entry }
            var shown = entry
            shown.detail = detail.anonymous
            return shown
        }
    }

    /// The caller's notifications (the patient's outbox for the patient and representatives,
    /// the médecin traitant's for professionals with full rights).
    public func notifications(of ins: INS, by caller: Caller, includeAcknowledged: Bool) async throws -> [NotificationRecord] {
        let dossier = try await performed(.readNotifications, on: ins, by: caller)
        guard case .person(let actor) = caller else { return [] }
        let notices = try await vault.notifications(
            for: dossier, recipient: NoticePolicy.recipient(of: actor), includeAcknowledged: includeAcknowledged)
        // A minor's confidential care is the patient's alone (L1111-5).
        guard actor.role == .representative else { return notices }
        let all = try await vault.documents(in: dossier, includeSuperseded: true).map { ($0.id, $0.facts) }
        guard let hiding = planner.policy.confidentialCare(hiddenFrom: actor, documents: all) else { return notices }
        return notices.filter { !hiding.hides(noticeHiddenFromRepresentatives: $0.hiddenFromRepresentatives, actorID: $0.actor?.actorID) }
    }

    /// How many of the dossier's current documents `caller` may see: what an answer about the
    /// dossier counts (a larger count would reveal masked or hidden documents).
    public func visibleDocumentCount(in dossier: DossierRecord, to caller: Caller) async throws -> Int {
        try await visibleDocuments(in: dossier, to: caller).count
    }

    private func performed(_ operation: DossierOperation, on ins: INS, by caller: Caller) async throws -> DossierRecord {
        try await perform(operation, on: ins, by: caller).dossierLeft()
    }

    private func visibleDocuments(in dossier: DossierRecord, to caller: Caller, allVersions: Bool = false) async throws -> [DocumentRecord]
    {
        let records = try await vault.documents(in: dossier, includeSuperseded: allVersions)
        guard case .person(let actor) = caller else { return records }
        let now = vault.clock.now()
        return records.filter { planner.policy.canSee(actor, $0.facts, in: dossier.facts, now: now) }
    }
}
