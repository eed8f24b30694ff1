#if canImport(Glibc)
    import Glibc
#endif
import ArgumentParser
import CoffreAPI
import CoffreClient
import CoffreDomain
import Foundation
import NIOCore

struct DocCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doc",
        abstract: "Store, fetch and list documents.",
        subcommands: [
            Put.self, Get.self, Show.self, List.self, Replace.self, Delete.self, Mask.self, Unmask.self, Release.self,
        ])

    struct Put: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Store a document; prints its new id.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The file to store.") var file: String
        @Option(name: .customLong("class"), help: "Category: \(DocumentClass.accepted).") var documentClass: String
        @Option(help: "Title.") var title: String?
        @Option(help: "LOINC or TRE_A05 type code.") var type: String?
        @Option(help: "Date of care, YYYY-MM-DD.") var date: String?
        @Option(help: "Media type (default: guessed from the file name).") var mediaType: String?
        @Flag(help: "Hide from the patient until an announcement consultation.") var hiddenFromPatient = false
        @Flag(help: "Hide from legal representatives.") var hiddenFromRepresentatives = false

        func execute() async throws(ClientError) {
            guard let documentClass = DocumentClass(rawValue: documentClass) else {
                throw ClientError(
                    code: ErrorCode.unknownClass.rawValue, message: "unknown class \(documentClass); accepted: \(DocumentClass.accepted)",
                    exitCode: ExitStatus.invalidRequest)
            }
            var careDate: CareDate? = nil
            if let date {
                guard let parsed = CareDate(date) else {
                    throw ClientError(
                        code: ErrorCode.invalidMetadata.rawValue, message: "--date must be YYYY-MM-DD", exitCode: ExitStatus.invalidRequest)
                }
                careDate = parsed
            }
            let upload = VaultClient.Upload(
                documentClass: documentClass, title: title, typeCode: type, careDate: careDate,
                mediaType: mediaType ?? MediaType.guess(file), hiddenFromPatient: hiddenFromPatient,
                hiddenFromRepresentatives: hiddenFromRepresentatives)
            let size = ((try? FileManager.default.attributesOfItem(atPath: file))?[.size] as? NSNumber)?.int64Value ?? 0
            let bar = ProgressBar.make(total: size, label: "storing")
            let document = try await global.client().putDocument(
                try global.patientINS(), path: file, upload: upload, progress: ProgressBar.callback(bar))
            bar?.finish()
            if global.json { return Output.json(document) }
            Output.line(document.id.value)
        }
    }

    struct Get: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Fetch a document's content, to stdout or a file.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The document id.") var id: String
        @Option(name: .shortAndLong, help: "Write to this file (atomically) instead of stdout.") var output: String?

        func execute() async throws(ClientError) {
            let documentID = try parseDocumentID(id)
            let ins = try global.patientINS()
            let client = try global.client()
            guard let output else {
                _ = try await client.fetchContent(ins, id: documentID, into: { Output.write(Data($0.readableBytesView)) })
                return
            }
            let file = try PartialFile(destination: output)
            do {
                var bar: ProgressBar? = nil
                let result = try await client.fetchContent(ins, id: documentID, into: file.write) { length in
                    bar = length.flatMap { ProgressBar.make(total: $0, label: "fetching") }
                    return ProgressBar.callback(bar)
                }
                bar?.finish()
                try file.commit()
                if global.json {
                    struct Fetched: Encodable { var id: String; var size: Int64; var sha256: String; var path: String }
                    Output.json(Fetched(id: documentID.value, size: result.size, sha256: result.sha256, path: output))
                }
            } catch {
                file.discard()
                throw error
            }
        }
    }

    struct Show: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show a document's metadata.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The document id.") var id: String

        func execute() async throws(ClientError) {
            let document = try await global.client().document(try global.patientINS(), id: try parseDocumentID(id))
            if global.json { return Output.json(document) }
            Output.fields([
                ("id", document.id.value), ("class", "\(document.documentClass.rawValue) (classCode \(document.classCode))"),
                ("type", document.typeCode), ("title", document.title), ("date of care", document.careDate?.value),
                ("uploaded", document.uploadedAt), ("media type", document.mediaType),
                ("size", "\(document.size) bytes"), ("sha256", document.sha256), ("status", document.status.rawValue),
                ("replaces", document.replaces?.value),
                (
                    "author",
                    "\(document.author.role.rawValue) \(document.author.id)"
                        + (document.author.profession.map { " (profession \($0))" } ?? "")
                ),
                ("masked", document.masked ? "yes" : nil),
                ("hidden from patient", document.hiddenFromPatient ? (document.releasedAt.map { "released \($0)" } ?? "yes") : nil),
                ("hidden from representatives", document.hiddenFromRepresentatives ? "yes" : nil),
            ])
        }
    }

    struct List: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "List the dossier's documents.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .customLong("class"), help: "Only this category.") var documentClass: String?
        @Flag(help: "Include superseded versions.") var allVersions = false

        func execute() async throws(ClientError) {
            var filter: DocumentClass? = nil
            if let documentClass {
                guard let parsed = DocumentClass(rawValue: documentClass) else {
                    throw ClientError(
                        code: ErrorCode.unknownClass.rawValue,
                        message: "unknown class \(documentClass); accepted: \(DocumentClass.accepted)", exitCode: ExitStatus.invalidRequest)
                }
                filter = parsed
            }
            let list = try await global.client().documents(try global.patientINS(), documentClass: filter, allVersions: allVersions)
            if global.json { return Output.json(list) }
            for document in list.documents {
                let columns = [
                    document.id.value, document.documentClass.rawValue.padding(toLength: 9, withPad: " ", startingAt: 0),
                    document.careDate?.value ?? String(document.uploadedAt.prefix(10)),
                    String(document.size).leftPadded(to: 10), document.status.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0),
                    document.title ?? "",
                ]
                Output.line(columns.joined(separator: "  "))
            }
        }
    }
}

extension DocCommand {
    struct Replace: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a new version of a document (yours); the old one is kept as superseded. Prints the new id.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The document id.") var id: String
        @Argument(help: "The file holding the new version.") var file: String
        @Option(name: .customLong("class"), help: "Category (default: the replaced version's).") var documentClass: String?
        @Option(help: "Title (default: the replaced version's).") var title: String?
        @Option(help: "Media type (default: guessed from the file name).") var mediaType: String?

        func execute() async throws(ClientError) {
            var parsedClass: DocumentClass? = nil
            if let documentClass {
                guard let known = DocumentClass(rawValue: documentClass) else {
                    throw ClientError(
                        code: ErrorCode.unknownClass.rawValue,
                        message: "unknown class \(documentClass); accepted: \(DocumentClass.accepted)",
                        exitCode: ExitStatus.invalidRequest)
                }
                parsedClass = known
            }
            let upload = VaultClient.Upload(
                documentClass: parsedClass, title: title, typeCode: nil, careDate: nil, mediaType: mediaType ?? MediaType.guess(file),
                hiddenFromPatient: false, hiddenFromRepresentatives: false)
            let document = try await global.client().putDocument(
                try global.patientINS(), path: file, upload: upload, replacing: try parseDocumentID(id))
            if global.json { return Output.json(document) }
            Output.line(document.id.value)
        }
    }

    /// Delete, mask, unmask and release: one id in, the document's new metadata out.
    protocol DocumentChangeCommand: ClientCommand {
        static var action: String { get }
        var id: String { get }
    }

    struct Delete: DocumentChangeCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a document you wrote (kept until the dossier is purged).")
        static let action = "delete"
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The document id.") var id: String
    }

    struct Mask: DocumentChangeCommand {
        static let configuration = CommandConfiguration(abstract: "Mask a document from professionals (patient).")
        static let action = "mask"
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The document id.") var id: String
    }

    struct Unmask: DocumentChangeCommand {
        static let configuration = CommandConfiguration(abstract: "Unmask a document (patient).")
        static let action = "unmask"
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The document id.") var id: String
    }

    struct Release: DocumentChangeCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a document hidden from the patient before its automatic release (author or médecin traitant).")
        static let action = "release"
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The document id.") var id: String
    }
}

extension DocCommand.DocumentChangeCommand {
    func execute() async throws(ClientError) {
        let document = try await global.client().changeDocument(try global.patientINS(), id: try parseDocumentID(id), action: Self.action)
        if global.json { return Output.json(document) }
        Output.fields([("id", document.id.value), ("status", document.status.rawValue), ("masked", document.masked ? "yes" : "no")])
    }
}

func parseDocumentID(_ text: String) throws(ClientError) -> DocumentID {
    guard let id = DocumentID(text) else {
        throw ClientError(
            code: ErrorCode.invalidIdentifier.rawValue, message: "a document id is 32 lowercase hexadecimal characters",
            exitCode: ExitStatus.invalidRequest)
    }
    return id
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
