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
    }

    @Sendable func store(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let actor = try gatekeeper.authorize(context, .addDocument, dossierOwner: ins)
        let metadata = try NewDocument(headers: request.headers, author: DocumentAuthor(actor))
        var declaredLength: Int64? = nil
        if let text = request.headers[.contentLength] {
            guard let length = Int64(text), length >= 0 else {
                throw Problem(.malformedRequest, detail: "Content-Length is not a number")
            }
            declaredLength = length
        }
        let record = try await vault.storeDocument(in: ins, metadata, content: request.body, declaredLength: declaredLength)
        return try json(DocumentView(record), status: .created)
    }

    @Sendable func list(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        try gatekeeper.authorize(context, .listDocuments, dossierOwner: ins)
        var filterClass: DocumentClass? = nil
        if let text = request.uri.queryParameters.get("class") {
            guard let documentClass = DocumentClass(rawValue: text) else {
                throw Problem(.unknownClass, detail: "unknown class; accepted: \(DocumentClass.accepted)")
            }
            filterClass = documentClass
        }
        let allVersions = request.uri.queryParameters.get("allVersions") == "true"
        let records = try await vault.documents(in: ins, includeSuperseded: allVersions)
        let views = records.filter { filterClass == nil || $0.documentClass == filterClass }.map(DocumentView.init)
        return try json(DocumentList(documents: views))
    }

    @Sendable func show(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        try gatekeeper.authorize(context, .readDocumentMetadata, dossierOwner: ins)
        return try json(DocumentView(try await vault.document(id, in: ins)))
    }

    @Sendable func content(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        try gatekeeper.authorize(context, .readDocumentContent, dossierOwner: ins)
        let content = try await vault.openContent(id, in: ins)
        let record = content.record
        var headers = HTTPFields()
        headers[.contentType] = record.mediaType
        headers[.contentLength] = "\(record.size)"
        headers[HTTPField.Name(CoffreHeader.contentSHA256)!] = Hex.encode(record.sha256)
        headers[HTTPField.Name(CoffreHeader.documentID)!] = record.id.value
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
            } catch {
                await content.close()
                logger.error(
                    "document stream stopped",
                    metadata: CoffreEvent.integrityFailure.metadata(["document.id": "\(record.id)", "error": "\(error)"]))
                throw error
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
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
