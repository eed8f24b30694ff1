import CoffreAPI
import CoffreDomain
import Foundation
import Hummingbird
import HTTPTypes

/// Reads an upload's metadata headers into what the client sent, checking each one's form
/// (the rules that complete it are the domain's, `DocumentRules`). Refuses before a byte of
/// content is read.
extension DocumentUpload {
    init(headers: HTTPFields) throws(Problem) {
        func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
        self.init()
        if let text = header(CoffreHeader.documentClass) {
            guard let known = DocumentClass(rawValue: text) else {
                throw Problem(.unknownClass, detail: "unknown class; accepted: \(DocumentClass.accepted)")
            }
            documentClass = known
        }
        if let encoded = header(CoffreHeader.title) {
            guard let decoded = UploadFields.title(percentEncoded: encoded) else {
                throw Problem(
                    .invalidMetadata, detail: "the title must be percent-encoded UTF-8 text of at most \(UploadFields.maxTitleBytes) bytes")
            }
            title = decoded
        }
        if let code = header(CoffreHeader.typeCode) {
            guard UploadFields.isValidTypeCode(code) else {
                throw Problem(.invalidMetadata, detail: "a type code is a LOINC or TRE_A05 code: letters, digits, '-', '.', '_'")
            }
            typeCode = code
        }
        if let text = header(CoffreHeader.careDate) {
            guard let date = CareDate(text) else { throw Problem(.invalidMetadata, detail: "the date of care must be YYYY-MM-DD") }
            careDate = date
        }
        if let flags = header(CoffreHeader.hiddenFrom) {
            guard let hidden = UploadFields.hiddenFrom(flags) else {
                throw Problem(.invalidMetadata, detail: "\(CoffreHeader.hiddenFrom) takes 'patient' and/or 'representatives'")
            }
            hiddenFrom = hidden
        }
        if let mediaType = headers[.contentType] {
            guard UploadFields.isValidMediaType(mediaType) else {
                throw Problem(.invalidMetadata, detail: "Content-Type must be a media type such as application/pdf")
            }
            self.mediaType = mediaType
        }
    }
}
