/// Which notices an operation owes, and what they say (in French, as the patient reads them).
public enum NoticePolicy {
    /// After an allowed access by a professional: emergency notices to the patient and the
    /// médecin traitant, and a first-access notice (or one per access, if the patient asked).
    /// - Parameter confidential: the access stores a document hidden from representatives (a
    ///   minor's confidential care): its notices are the patient's alone, never shown to the
    ///   representatives who read the patient's outbox.
    public static func accessed(by actor: Actor, dossier: DossierFacts, id: DossierID?, confidential: Bool = false) -> [Notice] {
        guard case .professional(let rpps, let profession, _, _) = actor.subject else { return [] }
        let who = "RPPS \(rpps.value), profession \(profession.code)"
        let detail = TraceDetail(actor: actor)
        var notices: [Notice] = []
        if actor.mode != .normal {
            let mode = actor.mode == .bris_de_glace ? "bris de glace" : "centre 15 (SAMU)"
            let reason = actor.reason.map { " Motif : \($0)." } ?? ""
            notices.append(
                Notice(
                    recipient: .patient, kind: .emergencyAccess,
                    message: "Accès en urgence (\(mode)) à votre dossier par un professionnel de santé (\(who)).\(reason)", actor: detail,
                    hiddenFromRepresentatives: confidential))
            if let doctor = dossier.settings.attendingDoctor, doctor != rpps.value {
                notices.append(
                    Notice(
                        recipient: .medecinTraitant, kind: .emergencyAccess,
                        message: "Accès en urgence (\(mode)) au dossier de votre patient par un professionnel de santé (\(who)).\(reason)",
                        actor: detail))
            }
        }
        let first = !dossier.settings.professionalsSeen.contains(rpps.value)
        if first {
            // Derived from the professional: of two first accesses at once, one notice is kept.
            notices.append(
                Notice(
                    recipient: .patient, kind: .professionalAccess,
                    message: "Premier accès à votre dossier par un professionnel de santé (\(who)).", actor: detail,
                    identity: .derived("first-access/\(id?.value ?? "-")/\(rpps.value)"), hiddenFromRepresentatives: confidential))
        } else if dossier.settings.notifyEveryAccess {
            notices.append(
                Notice(
                    recipient: .patient, kind: .professionalAccess,
                    message: "Accès à votre dossier par un professionnel de santé (\(who)).",
                    actor: detail, hiddenFromRepresentatives: confidential))
        }
        return notices
    }

    /// The notice a document a professional stores owes the patient; none if the patient asked
    /// not to be told or the document is hidden from them (the two-week notice covers that one).
    public static func stored(_ document: NewDocument, by actor: Actor, in dossier: DossierFacts, replacing: Bool) -> Notice? {
        guard case .professional = actor.subject, dossier.settings.notifyNewDocuments, !document.hiddenFromPatient else { return nil }
        let message =
            replacing
            ? "Un document de votre dossier a été remplacé par une nouvelle version par un professionnel de santé."
            : "Un nouveau document a été ajouté à votre dossier par un professionnel de santé."
        // Representatives read the patient's outbox: a document hidden from them is the
        // patient's news alone.
        return Notice(
            recipient: .patient, kind: replacing ? .documentReplaced : .documentAdded, message: message, actor: TraceDetail(actor: actor),
            subject: .newDocument, hiddenFromRepresentatives: document.hiddenFromRepresentatives)
    }

    /// The notice a change a professional makes to a stored document owes the patient: the
    /// patient is told each time a document is modified. A release tells them the document is
    /// now theirs to read; a deletion, unless the document was still hidden from them (its
    /// existence would be news) or they asked not to be told of documents.
    public static func changed(
        _ change: DocumentChange, document id: DocumentID, _ document: DocumentFacts, by actor: Actor, in dossier: DossierFacts,
        at now: Int64, delays: DisclosureDelays
    ) -> Notice? {
        guard case .professional = actor.subject else { return nil }
        let detail = TraceDetail(actor: actor)
        switch change {
        case .release:
            return Notice(
                recipient: .patient, kind: .documentReleased,
                message: "Un document de votre dossier, réservé jusqu'ici à une consultation d'annonce, est désormais consultable.",
                actor: detail, subject: .document(id), hiddenFromRepresentatives: document.hiddenFromRepresentatives)
        case .delete:
            guard dossier.settings.notifyNewDocuments, !document.isHiddenFromPatient(at: now, delays: delays) else { return nil }
            return Notice(
                recipient: .patient, kind: .documentDeleted,
                message: "Un document de votre dossier a été supprimé par un professionnel de santé.",
                actor: detail, subject: .document(id), hiddenFromRepresentatives: document.hiddenFromRepresentatives)
        case .mask:
            return nil
        }
    }

    /// Documents hidden from the patient that have waited `delays.waitingNotice` without being
    /// released: one notice each, which says nothing of the document; its id derives from the
    /// document's, so it is stored once however often it is computed.
    public static func waiting(_ documents: [(id: DocumentID, facts: DocumentFacts)], at now: Int64, delays: DisclosureDelays) -> [Notice] {
        documents.compactMap { document in
            let facts = document.facts
            guard facts.status != .deleted, facts.isHiddenFromPatient(at: now, delays: delays),
                now >= facts.uploadedAt + delays.waitingNotice
            else { return nil }
            return Notice(
                recipient: .patient, kind: .hiddenDocumentWaiting,
                message: "Votre dossier a été mis à jour. Un professionnel de santé souhaite vous en parler : prenez rendez-vous avec lui.",
                identity: .derived("hidden-document-waiting/" + document.id.value),
                hiddenFromRepresentatives: facts.hiddenFromRepresentatives)
        }
    }

    /// The patient and representatives read the patient's notices; the médecin traitant (and
    /// administrators, who share the rights) read theirs.
    public static func recipient(of actor: Actor) -> NotificationRecipient {
        if case .professional = actor.subject { return .medecinTraitant }
        return .patient
    }
}
