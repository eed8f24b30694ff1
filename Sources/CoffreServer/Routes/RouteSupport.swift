import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import CoffreCrypto

/// Helpers every route uses to read identifiers and answer JSON.
extension CoffreRequestContext {
    /// The patient INS of the path, checked.
    func patientINS() throws(Problem) -> INS {
        guard let text = parameters.get("ins"), let ins = INS(text) else {
            throw Problem(.invalidINS, detail: "the INS must be 15 characters: the NIR and its key 97 − (NIR mod 97)")
        }
        return ins
    }

    /// The document id of the path, checked to be exactly 32 lowercase hex characters.
    func documentID() throws(Problem) -> DocumentID {
        guard let text = parameters.get("id"), let id = DocumentID(text) else {
            throw Problem(.invalidIdentifier, detail: "a document id is 32 lowercase hexadecimal characters")
        }
        return id
    }
}

/// RFC 3339 UTC text of a time in milliseconds since the epoch.
func rfc3339(milliseconds: Int64) -> String {
    Date(timeIntervalSince1970: Double(milliseconds) / 1000).formatted(.iso8601)
}

/// A JSON answer with a status.
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let body = try encoder.encode(value)
    var headers = HTTPFields()
    headers[.contentType] = "application/json"
    headers[.contentLength] = "\(body.count)"
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
}

extension DocumentView {
    init(_ record: DocumentRecord) {
        self.init(
            id: record.id, dossierId: record.dossierID, documentClass: record.documentClass,
            typeCode: record.typeCode, title: record.title, careDate: record.careDate,
            uploadedAt: rfc3339(milliseconds: record.uploadedAt), mediaType: record.mediaType, size: record.size,
            sha256: Hex.encode(record.sha256), status: record.status, replaces: record.replaces,
            author: record.author,
            hiddenFromPatient: record.hiddenFromPatient, hiddenFromRepresentatives: record.hiddenFromRepresentatives,
            masked: record.masked, releasedAt: record.releasedAt.map { rfc3339(milliseconds: $0) })
    }
}
