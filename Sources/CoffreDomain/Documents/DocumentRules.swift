/// How a document's stored metadata follows from what its author sent and from the dossier.
public enum DocumentRules {
    /// A new document: the class is required; hiding it is a professional's call (pending an
    /// announcement consultation, or care a minor keeps from their representatives); the
    /// patient's "mask new documents" preference masks it from the start.
    public static func newDocument(_ upload: DocumentUpload, by actor: Actor, in dossier: DossierFacts) throws(Refusal) -> NewDocument {
        guard let documentClass = upload.documentClass else { throw .classMissing }
        let hidden = try hiddenFlags(upload, by: actor) ?? (false, false)
        var document = NewDocument(
            documentClass: documentClass, title: upload.title, typeCode: upload.typeCode, careDate: upload.careDate,
            mediaType: upload.mediaType ?? "application/octet-stream", author: DocumentAuthor(actor),
            hiddenFromPatient: hidden.patient, hiddenFromRepresentatives: hidden.representatives)
        document.masked = dossier.settings.maskNewDocuments
        return document
    }

    /// A new version: what is not sent again is carried over from the version it replaces, and
    /// so is masking. A version replacing one the patient may already read does not hide it
    /// again, and the month before automatic release runs from the first hidden version.
    public static func newVersion(
        _ upload: DocumentUpload, by actor: Actor, replacing old: NewDocument, facts: DocumentFacts, at now: Int64,
        delays: DisclosureDelays
    ) throws(Refusal) -> NewDocument {
        let hidden =
            try hiddenFlags(upload, by: actor)
            ?? (facts.isHiddenFromPatient(at: now, delays: delays), old.hiddenFromRepresentatives)
        var document = NewDocument(
            documentClass: upload.documentClass ?? old.documentClass, title: upload.title ?? old.title,
            typeCode: upload.typeCode ?? old.typeCode, careDate: upload.careDate ?? old.careDate,
            mediaType: upload.mediaType ?? old.mediaType, author: DocumentAuthor(actor),
            hiddenFromPatient: hidden.patient, hiddenFromRepresentatives: hidden.representatives)
        document.masked = old.masked
        if document.hiddenFromPatient && old.hiddenFromPatient {
            // `facts.uploadedAt` is the first hidden version's upload time.
            document.hiddenSince = old.hiddenSince ?? facts.uploadedAt
        }
        return document
    }

    /// The hidden flags the upload sets, nil if it says nothing of them.
    private static func hiddenFlags(_ upload: DocumentUpload, by actor: Actor) throws(Refusal) -> (patient: Bool, representatives: Bool)? {
        guard let hidden = upload.hiddenFrom else { return nil }
        guard actor.role == .professional else {
            throw .invalidRequest("only a professional may hide a document from the patient or representatives")
        }
        return hidden
    }

    /// `change` if the named version allows it as the facts show it (the store checks again on
    /// the versions as it writes them, for a change that races another).
    public static func checked(_ change: DocumentChange, on facts: DocumentFacts?) throws(Refusal) -> DocumentChange {
        guard let facts else { return change }
        var version = DocumentVersionState(
            isNamed: true, status: facts.status, masked: facts.masked, hiddenFromPatient: facts.hiddenFromPatient,
            releasedAt: facts.releasedAt)
        try change.apply(to: &version, named: version)
        return change
    }
}
