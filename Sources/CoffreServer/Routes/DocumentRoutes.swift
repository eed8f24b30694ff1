import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import HTTPTypes
import Logging
import CoffreCrypto

/// `/v1/patients/{ins}/documents`: store (content as the raw body, metadata in headers), list,
/// show metadata, fetch content (streamed).
struct DocumentRoutes: Sendable {
    let vault: Vault
    let gatekeeper: Gatekeeper

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.post("documents", use: store)
        group.get("documents", use: list)
        group.get("documents/:id", use: show)
        group.get("documents/:id/content", use: content)
        group.post("documents/:id/replace", use: replace)
        group.delete("documents/:id", use: delete)
        group.post("documents/:id/mask") { request, context in try await change(.maskDocument, request, context) { _ in .mask(true) } }
        group.post("documents/:id/unmask") { request, context in try await change(.maskDocument, request, context) { _ in .mask(false) } }
        group.post("documents/:id/release") { request, context in
            try await change(.releaseDocument, request, context) { now in .release(at: now) }
        }
    }

    @Sendable func store(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let dossier = try await vault.dossier(for: ins)
        // The decision's trace entry is written with the document row, in one transaction.
        let (actor, decision) = try await gatekeeper.authorizeChange(context, .addDocument, owner: ins, dossier: dossier)
        let (metadata, length) = try await beforeStoring(decision, in: dossier) {
            var metadata = try NewDocument(headers: request.headers, author: DocumentAuthor(actor), defaults: nil)
            metadata.masked = dossier.settings.maskNewDocuments
            return (metadata, try declaredLength(request))
        }
        let record = try await vault.storeDocument(
            in: dossier, metadata, content: request.body, declaredLength: length, tracing: decision,
            notifying: gatekeeper.notifier.notice(storing: metadata, by: actor, in: dossier, replacing: false))
        return try json(DocumentView(record), status: .created)
    }

    @Sendable func replace(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        let dossier = try await vault.dossier(for: ins)
        let old = try await vault.document(id, in: dossier)
        let (actor, decision) = try await gatekeeper.authorizeChange(context, .replaceDocument, owner: ins, dossier: dossier, document: old)
        // Metadata not sent again is carried over from the version replaced.
        var (metadata, length) = try await beforeStoring(decision, in: dossier) {
            (try NewDocument(headers: request.headers, author: DocumentAuthor(actor), defaults: old), try declaredLength(request))
        }
        metadata.masked = old.masked
        // A version replacing one the patient may already read must not hide it again.
        if request.headers[HTTPField.Name(CoffreHeader.hiddenFrom)!] == nil {
            metadata.hiddenFromPatient = old.facts.isHiddenFromPatient(at: gatekeeper.clock.now(), delays: gatekeeper.policy.delays)
        }
        // The month before automatic release runs from the first hidden version, not this one.
        if metadata.hiddenFromPatient && old.hiddenFromPatient {
            metadata.hiddenSince = old.hiddenSince ?? old.uploadedAt
        }
        let record = try await vault.storeDocument(
            in: dossier, metadata, content: request.body, declaredLength: length, replacing: id, tracing: decision,
            notifying: gatekeeper.notifier.notice(storing: metadata, by: actor, in: dossier, replacing: true))
        return try json(DocumentView(record), status: .created)
    }

    @Sendable func delete(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        try await change(.deleteDocument, request, context) { _ in .delete }
    }

    /// Mask, unmask, release or delete: the decision needs the document's facts first.
    func change(
        _ action: DossierAction, _ request: Request, _ context: CoffreRequestContext, _ make: (Int64) -> Vault.DocumentChange
    ) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        let dossier = try await vault.dossier(for: ins)
        let document = try await vault.document(id, in: dossier)
        try await gatekeeper.authorize(context, action, owner: ins, dossier: dossier, document: document)
        let record = try await vault.change(id, in: ins, make(gatekeeper.clock.now()))
        return try json(DocumentView(record))
    }

    @Sendable func list(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        var filterClass: DocumentClass? = nil
        if let text = request.uri.queryParameters.get("class") {
            guard let documentClass = DocumentClass(rawValue: text) else {
                throw Problem(.unknownClass, detail: "unknown class; accepted: \(DocumentClass.accepted)")
            }
            filterClass = documentClass
        }
        let dossier = try await vault.dossier(for: ins)
        let actor = try await gatekeeper.authorize(context, .listDocuments, owner: ins, dossier: dossier)
        let allVersions = request.uri.queryParameters.get("allVersions") == "true"
        let records = try await vault.documents(in: dossier, includeSuperseded: allVersions)
        let views = records.filter { record in
            (filterClass == nil || record.documentClass == filterClass) && gatekeeper.canSee(actor, record, in: dossier)
        }
        return try json(DocumentList(documents: views.map(DocumentView.init)))
    }

    @Sendable func show(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        let dossier = try await vault.dossier(for: ins)
        let record = try await vault.document(id, in: dossier)
        try await gatekeeper.authorize(context, .readDocumentMetadata, owner: ins, dossier: dossier, document: record)
        return try json(DocumentView(record))
    }

    @Sendable func content(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        let dossier = try await vault.dossier(for: ins)
        let document = try await vault.openDocument(id, in: dossier)
        let metadata = document.record
        // The blob is opened and its first record decrypted while the decision is written to the
        // trace (a durable commit): the two waits overlap. Nothing of it leaves the daemon before
        // the decision is allowed and durable, and a refusal wins over any error of the opening.
        let vault = self.vault
        async let opening = { () async -> Result<DocumentContent, StoreError> in
            do throws(StoreError) { return .success(try await vault.openContent(of: document)) } catch { return .failure(error) }
        }()
        do {
            try await gatekeeper.authorize(context, .readDocumentContent, owner: ins, dossier: dossier, document: metadata)
            guard metadata.status != .deleted else { throw Problem(.documentNotFound, detail: "this document was deleted") }
        } catch {
            if case .success(let content) = await opening { await content.close() }
            throw error
        }
        let content = try await opening.get()
        let record = content.record
        var headers = HTTPFields()
        headers[.contentType] = record.mediaType
        headers[.contentLength] = "\(record.size)"
        headers[HTTPField.Name(CoffreHeader.contentSHA256)!] = Hex.encode(record.sha256)
        headers[HTTPField.Name(CoffreHeader.documentID)!] = record.id.value
        // A document of one record is already decrypted and checked whole: it goes out with
        // its head in one write (a streamed body costs a write and a flush for each part).
        if let whole = content.takeWholeIfChecked() {
            await content.close()
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: whole)))
        }
        let logger = context.logger
        // Records are authenticated before they are sent. If a later record fails, the stream
        // stops and the connection is closed short of Content-Length: the client sees an
        // incomplete body and discards it; wrong bytes are never sent.
        let body = ResponseBody(contentLength: Int(record.size)) { writer in
            do {
                while let plaintext = try await content.next() {
                    try await writer.write(ByteBuffer(bytes: plaintext))
                }
                await content.close()
            } catch let error as StoreError where error.code == .integrity {
                await content.close()
                logger.error(
                    "document stream stopped",
                    metadata: CoffreEvent.integrityFailure.metadata(["document.id": "\(record.id)", "error": "\(error)"]))
                throw error
            } catch {
                // The client went away (or the daemon is stopping): not an integrity failure.
                await content.close()
                logger.info("document stream ended early", metadata: ["document.id": "\(record.id)", "error": "\(error)"])
                throw error
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// Reads what a store needs from the request before the vault is asked. A refusal here
    /// comes before the vault could write the allowed decision with the document: it is
    /// written alone, then the refusal thrown.
    private func beforeStoring<T>(_ decision: TraceIntent, in dossier: DossierRecord, _ read: () throws -> T) async throws -> T {
        do {
            return try read()
        } catch {
            try await vault.recordTrace(decision, dossier: dossier)
            throw error
        }
    }

    private func declaredLength(_ request: Request) throws(Problem) -> Int64? {
        guard let text = request.headers[.contentLength] else { return nil }
        guard let length = Int64(text), length >= 0 else {
            throw Problem(.malformedRequest, detail: "Content-Length is not a number")
        }
        return length
    }
}

extension DocumentAuthor {
    init(_ actor: Actor) {
        switch actor.subject {
        case .patient(let ins): self.init(role: .patient, id: ins.value, profession: nil)
        case .representative(let ins, _): self.init(role: .representative, id: ins.value, profession: nil)
        case .professional(let rpps, let profession, _, _): self.init(role: .professional, id: rpps.value, profession: profession.code)
        }
    }
}
