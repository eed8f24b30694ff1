import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import HTTPTypes
import CoffreCrypto

/// Reads and checks the metadata headers of an upload. Refuses before a byte of content is read.
enum UploadMetadata {
    static let maxTitleBytes = 512
    static let maxTypeCodeBytes = 64

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
            guard let decoded = encoded.removingPercentEncoding, decoded.utf8.count <= maxTitleBytes,
                !decoded.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw Problem(.invalidMetadata, detail: "the title must be percent-encoded UTF-8 text of at most \(maxTitleBytes) bytes")
            }
            title = decoded
        }
        var typeCode: String? = defaults?.typeCode
        if let code = header(headers, CoffreHeader.typeCode) {
            guard (1...maxTypeCodeBytes).contains(code.utf8.count),
                code.utf8.allSatisfy({
                    (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 || $0 == 46 || $0 == 95
                })
            else {
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
            hiddenFromPatient = false
            hiddenFromRepresentatives = false
            for flag in flags.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !flag.isEmpty {
                switch flag {
                case "patient": hiddenFromPatient = true
                case "representatives": hiddenFromRepresentatives = true
                default: throw Problem(.invalidMetadata, detail: "\(CoffreHeader.hiddenFrom) takes 'patient' and/or 'representatives'")
                }
            }
        }
        let mediaType = headers[.contentType] ?? defaults?.mediaType ?? "application/octet-stream"
        guard mediaType.utf8.count <= 255, mediaType.contains("/") else {
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
