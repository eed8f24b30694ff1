import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import HTTPTypes
import Logging
import CoffreCrypto

/// `/v1/patients/{ins}/documents`: store (content as the raw body, metadata in headers), list,
/// show metadata, fetch content (streamed), replace, delete, mask, unmask, release. Each
/// handler decodes, runs the operation through the pipeline, and encodes.
struct DocumentRoutes: Sendable {
    let pipeline: OperationPipeline
    let transfers: TransferLimiter

    func add(to group: RouterGroup<CoffreRequestContext>) {
        // Uploads and downloads of content hold memory and key slots while they run: admitted
        // within the caps first.
        let transfer = group.group().add(middleware: TransferAdmission(limiter: transfers))
        transfer.post("documents", use: store)
        transfer.get("documents/:id/content", use: content)
        transfer.post("documents/:id/replace", use: replace)
        group.get("documents", use: list)
        group.get("documents/:id", use: show)
        group.delete("documents/:id") { _, context in try await change(context) { .deleteDocument($0) } }
        group.post("documents/:id/mask") { _, context in try await change(context) { .maskDocument($0, masked: true) } }
        group.post("documents/:id/unmask") { _, context in try await change(context) { .maskDocument($0, masked: false) } }
        group.post("documents/:id/release") { _, context in try await change(context) { .releaseDocument($0) } }
    }

    @Sendable func store(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let upload = try DocumentUpload(headers: request.headers)
        let record = try await pipeline.store(
            .addDocument(upload), on: ins, by: try context.person(), content: request.body, declaredLength: try declaredLength(request))
        return try json(DocumentView(record), status: .created)
    }

    @Sendable func replace(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        let upload = try DocumentUpload(headers: request.headers)
        let record = try await pipeline.store(
            .replaceDocument(id, upload), on: ins, by: try context.person(), content: request.body,
            declaredLength: try declaredLength(request))
        return try json(DocumentView(record), status: .created)
    }

    /// Mask, unmask, release or delete: the document as the change left it.
    func change(_ context: CoffreRequestContext, _ operation: (DocumentID) -> DossierOperation) async throws -> Response {
        let ins = try context.patientINS()
        let id = try context.documentID()
        let outcome = try await pipeline.perform(operation(id), on: ins, by: try context.person())
        let record = try outcome.documentLeft()
        return try json(DocumentView(record))
    }

    @Sendable func list(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        var documentClass: DocumentClass? = nil
        if let text = request.uri.queryParameters.get("class") {
            guard let known = DocumentClass(rawValue: text) else {
                throw Problem(.unknownClass, detail: "unknown class; accepted: \(DocumentClass.accepted)")
            }
            documentClass = known
        }
        let records = try await pipeline.documents(
            of: ins, by: try context.person(), documentClass: documentClass,
            allVersions: request.uri.queryParameters.get("allVersions") == "true")
        return try json(DocumentList(documents: records.map(DocumentView.init)))
    }

    @Sendable func show(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let outcome = try await pipeline.perform(
            .readDocument(try context.documentID()), on: try context.patientINS(), by: try context.person())
        let record = try outcome.documentLeft()
        return try json(DocumentView(record))
    }

    @Sendable func content(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let content = try await pipeline.openContent(try context.documentID(), on: try context.patientINS(), by: try context.person())
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
        let (logger, ticket) = (context.logger, context.transfer)
        // Records are authenticated before they are sent. If a later record fails, the stream
        // stops and the connection is closed short of Content-Length: the client sees an
        // incomplete body and discards it; wrong bytes are never sent.
        let body = ResponseBody(contentLength: Int(record.size)) { writer in
            // The transfer's place is held until the last record is written.
            defer { withExtendedLifetime(ticket) {} }
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

    private func declaredLength(_ request: Request) throws(Problem) -> Int64? {
        guard let text = request.headers[.contentLength] else { return nil }
        guard let length = Int64(text), length >= 0 else {
            throw Problem(.malformedRequest, detail: "Content-Length is not a number")
        }
        return length
    }
}
