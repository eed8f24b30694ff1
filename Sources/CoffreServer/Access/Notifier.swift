import CoffreDomain
import CoffreStore
import Foundation

/// Decides which notices an access or a new document sends, and puts them in the outbox.
///
/// Like the trace, the outbox is written before the answer: a notice the patient is owed is
/// never lost to a crash after the access was served. A new document's notice goes further: it
/// is written in the transaction that records the document.
struct Notifier: Sendable {
    let vault: Vault
    let delays: DisclosureDelays

    /// After an allowed access by a professional: emergency notices to the patient and the
    /// médecin traitant, and a first-access notice (or one per access, if the patient asked).
    func accessed(by actor: Actor, dossier: DossierRecord) async throws {
        guard case .professional(let rpps, let profession, _, _) = actor.subject else { return }
        let who = "RPPS \(rpps.value), profession \(profession.code)"
        let detail = TraceDetail(actor: actor)
        if actor.mode != .normal {
            let mode = actor.mode == .bris_de_glace ? "bris de glace" : "centre 15 (SAMU)"
            let reason = actor.reason.map { " Motif : \($0)." } ?? ""
            let message = "Accès en urgence (\(mode)) à votre dossier par un professionnel de santé (\(who)).\(reason)"
            try await vault.notify(dossier, recipient: .patient, kind: .emergencyAccess, message: message, actor: detail)
            if let doctor = dossier.settings.attendingDoctor, doctor != rpps.value {
                try await vault.notify(
                    dossier, recipient: .medecinTraitant, kind: .emergencyAccess,
                    message: "Accès en urgence (\(mode)) au dossier de votre patient par un professionnel de santé (\(who)).\(reason)",
                    actor: detail)
            }
        }
        var first = false
        if !dossier.settings.professionalsSeen.contains(rpps.value) {
            first = try await vault.updateSettingsReportingChange(for: dossier.ins) { $0.professionalsSeen.insert(rpps.value) }.changed
        }
        if first || dossier.settings.notifyEveryAccess {
            let message =
                first
                ? "Premier accès à votre dossier par un professionnel de santé (\(who))."
                : "Accès à votre dossier par un professionnel de santé (\(who))."
            try await vault.notify(dossier, recipient: .patient, kind: .professionalAccess, message: message, actor: detail)
        }
    }

    /// The notice a document a professional is storing owes the patient, to be written with it;
    /// none if the patient asked not to be told or the document is hidden from them (the
    /// two-week notice covers that one).
    func notice(storing metadata: NewDocument, by actor: Actor, in dossier: DossierRecord, replacing: Bool) -> DocumentNotice? {
        guard case .professional = actor.subject, dossier.settings.notifyNewDocuments, !metadata.hiddenFromPatient else { return nil }
        let message =
            replacing
            ? "Un document de votre dossier a été remplacé par une nouvelle version par un professionnel de santé."
            : "Un nouveau document a été ajouté à votre dossier par un professionnel de santé."
        // Representatives read the patient's outbox: a document hidden from them is announced
        // without naming it or who wrote it.
        return DocumentNotice(
            recipient: .patient, kind: replacing ? .documentReplaced : .documentAdded, message: message,
            actor: metadata.hiddenFromRepresentatives ? nil : TraceDetail(actor: actor), namesDocument: !metadata.hiddenFromRepresentatives)
    }

    /// Documents hidden from the patient that have waited `delays.waitingNotice` without being
    /// released: one notice each, which says nothing of the document (computed when the patient
    /// reads their notifications; the notice's id derives from the document's, so it is stored
    /// once).
    func noticeWaitingDocuments(in dossier: DossierRecord, now: Int64) async throws {
        for record in try await vault.documents(in: dossier.ins) {
            let facts = record.facts
            guard facts.isHiddenFromPatient(at: now, delays: delays), now >= facts.uploadedAt + delays.waitingNotice else { continue }
            try await vault.notify(
                dossier, recipient: .patient, kind: .hiddenDocumentWaiting,
                message: "Votre dossier a été mis à jour. Un professionnel de santé souhaite vous en parler : prenez rendez-vous avec lui.",
                id: Vault.derivedIdentifier("hidden-document-waiting", record.id.value))
        }
    }
}
