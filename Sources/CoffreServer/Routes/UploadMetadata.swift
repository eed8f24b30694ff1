import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import HTTPTypes
import CoffreCrypto

/// Reads and checks the metadata headers of an upload. Refuses before a byte of content is read.
enum UploadMetadata {

    static func header(_ headers: HTTPFields, _ name: String) -> String? {
        headers[HTTPField.Name(name)!]
    }

    /// - Parameter defaults: the version being replaced, whose metadata fills what is not sent.
    static func make(headers: HTTPFields, author: DocumentAuthor, defaults: DocumentRecord?) throws(Problem) -> NewDocument {
        let documentClass: DocumentClass
        if let classText = header(headers, CoffreHeader.documentClass) {
            guard let known = DocumentClass(rawValue: classText) else {
                throw Problem(.unknownClass, detail: "unknown class; accepted: \(DocumentClass.accepted)")
            }
            documentClass = known
        } else if let defaults {
            documentClass = defaults.documentClass
        } else {
            throw Problem(
                .unknownClass, detail: "send the document class in \(CoffreHeader.documentClass); accepted: \(DocumentClass.accepted)")
        }
        var title: String? = defaults?.title
        if let encoded = header(headers, CoffreHeader.title) {
            guard let decoded = UploadFields.title(percentEncoded: encoded) else {
                throw Problem(
                    .invalidMetadata, detail: "the title must be percent-encoded UTF-8 text of at most \(UploadFields.maxTitleBytes) bytes")
            }
            title = decoded
        }
        var typeCode: String? = defaults?.typeCode
        if let code = header(headers, CoffreHeader.typeCode) {
            guard UploadFields.isValidTypeCode(code) else {
                throw Problem(.invalidMetadata, detail: "a type code is a LOINC or TRE_A05 code: letters, digits, '-', '.', '_'")
            }
            typeCode = code
        }
        var careDate: CareDate? = defaults?.careDate
        if let text = header(headers, CoffreHeader.careDate) {
            guard let date = CareDate(text) else { throw Problem(.invalidMetadata, detail: "the date of care must be YYYY-MM-DD") }
            careDate = date
        }
        var hiddenFromPatient = defaults?.hiddenFromPatient ?? false
        var hiddenFromRepresentatives = defaults?.hiddenFromRepresentatives ?? false
        if let flags = header(headers, CoffreHeader.hiddenFrom) {
            // Hiding a document pending an announcement consultation is a professional's call.
            guard author.role == .professional else {
                throw Problem(.invalidMetadata, detail: "only a professional may hide a document from the patient or representatives")
            }
            guard let hidden = UploadFields.hiddenFrom(flags) else {
                throw Problem(.invalidMetadata, detail: "\(CoffreHeader.hiddenFrom) takes 'patient' and/or 'representatives'")
            }
            (hiddenFromPatient, hiddenFromRepresentatives) = (hidden.patient, hidden.representatives)
        }
        let mediaType = headers[.contentType] ?? defaults?.mediaType ?? "application/octet-stream"
        guard UploadFields.isValidMediaType(mediaType) else {
            throw Problem(.invalidMetadata, detail: "Content-Type must be a media type such as application/pdf")
        }
        return NewDocument(
            documentClass: documentClass, title: title, typeCode: typeCode, careDate: careDate,
            mediaType: mediaType, author: author, hiddenFromPatient: hiddenFromPatient,
            hiddenFromRepresentatives: hiddenFromRepresentatives)
    }
}

extension NewDocument {
    init(headers: HTTPFields, author: DocumentAuthor, defaults: DocumentRecord?) throws(Problem) {
        self = try UploadMetadata.make(headers: headers, author: author, defaults: defaults)
    }
}
