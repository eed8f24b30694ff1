import ArgumentParser
import CoffreAPI
import CoffreClient
import CoffreDomain

struct DossierCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dossier",
        abstract: "Create and show a patient's dossier.",
        subcommands: [
            Create.self, Show.self, SetDoctor.self, Preferences.self, Close.self, Reopen.self, Oppose.self, Hold.self, Release.self,
            RecordDeath.self, Rekey.self,
        ])

    struct Create: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Create the patient's dossier.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let dossier = try await global.client().createDossier(try global.patientINS())
            if global.json { return Output.json(dossier) }
            Output.line(dossier.id.value)
        }
    }

    struct Show: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show the patient's dossier.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let dossier = try await global.client().dossier(try global.patientINS())
            if global.json { return Output.json(dossier) }
            DossierCommand.print(dossier)
        }
    }

    static func print(_ dossier: DossierView) {
        Output.fields([
            ("id", dossier.id.value), ("patient", dossier.ins), ("state", dossier.state),
            ("created", dossier.createdAt), ("documents", String(dossier.documentCount)),
            ("closed", dossier.closedAt.map { $0 + (dossier.closureReason.map { " (\($0))" } ?? "") }),
            ("deletion requested", dossier.deletionRequested ? "yes" : nil), ("purge date", dossier.purgeDate),
            ("legal hold", dossier.legalHold ? "yes: purge blocked" : nil),
        ])
    }
}

extension DossierCommand {
    struct Close: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close the dossier: read-only, kept ten years after closure (three months with --delete), then purged.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Ask for deletion: purged three months after closure.") var delete = false
        @Flag(help: "Closure on the patient's death (the médecin traitant records it).") var death = false

        func execute() async throws(ClientError) {
            let dossier = try await global.client().closeDossier(try global.patientINS(), delete: delete, death: death)
            if global.json { return Output.json(dossier) }
            DossierCommand.print(dossier)
        }
    }

    struct Reopen: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Reopen a closed dossier, with everything it held.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let dossier = try await global.client().reopenDossier(try global.patientINS())
            if global.json { return Output.json(dossier) }
            DossierCommand.print(dossier)
        }
    }

    struct Oppose: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Oppose the dossier within a month of its creation: it is destroyed at once, for good.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let result = try await global.client().opposeDossier(try global.patientINS())
            if global.json { return Output.json(result) }
            Output.line("dossier \(result.id.value) destroyed")
        }
    }

    struct Hold: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Set a legal hold, which blocks purge (operators).")
        // The reason is the global --reason (the same words scripts use for an emergency's).
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            guard let reason = global.reason, !reason.isEmpty else {
                throw ClientError(code: "hold_reason_missing", message: "a legal hold needs --reason TEXT", exitCode: ExitStatus.usage)
            }
            let dossier = try await global.client().hold(try global.patientINS(), reason: reason)
            if global.json { return Output.json(dossier) }
            DossierCommand.print(dossier)
        }
    }

    struct RecordDeath: ClientCommand {
        static let configuration = CommandConfiguration(
            commandName: "record-death",
            abstract: "Record the patient's death: the dossier is closed and kept for the legal retention (operators).",
            discussion: "The médecin traitant records it with `dossier close --death`; this is for a patient who has none.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let dossier = try await global.client().recordDeath(try global.patientINS())
            if global.json { return Output.json(dossier) }
            DossierCommand.print(dossier)
        }
    }

    struct Rekey: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give the dossier a new key after a suspected compromise (operators).",
            discussion: """
                Every document key is rewrapped under the new dossier key; with --reencrypt every blob is also \
                re-encrypted under a new document key (crash-safe: the old blob stays until the new one is committed). \
                The trace keeps its entries, readable as before.
                """)
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Also re-encrypt every blob under new document keys (reads and writes every byte).") var reencrypt = false

        func execute() async throws(ClientError) {
            let result = try await global.client().rekeyDossier(try global.patientINS(), reencrypt: reencrypt)
            if global.json { return Output.json(result) }
            Output.fields([
                ("dossier", result.dossierId), ("key generation", String(result.keyGeneration)),
                ("document keys rewrapped", String(result.documentKeysRewrapped)),
                ("blobs re-encrypted", String(result.blobsReencrypted)),
            ])
        }
    }

    struct Release: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a legal hold (operators).")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let dossier = try await global.client().hold(try global.patientINS(), reason: nil)
            if global.json { return Output.json(dossier) }
            DossierCommand.print(dossier)
        }
    }

    struct SetDoctor: ClientCommand {
        static let configuration = CommandConfiguration(commandName: "set-doctor", abstract: "Name the médecin traitant.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The doctor's RPPS number.") var rpps: String
        @Option(help: "Their profession code in the RPPS nomenclature; a médecin traitant is a doctor (10).")
        var profession = "10"

        func execute() async throws(ClientError) {
            AccessCommand.show(
                try await global.client().setAttendingDoctor(try global.patientINS(), rpps: rpps, profession: profession),
                json: global.json)
        }
    }

    struct Preferences: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Set the patient's preferences (on or off).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Mask documents added from now on.") var maskNewDocuments: String?
        @Option(help: "Notify every access by a professional, not only the first.") var notifyEveryAccess: String?
        @Option(help: "Notify each document a professional adds or replaces.") var notifyNewDocuments: String?

        func execute() async throws(ClientError) {
            func flag(_ text: String?, _ name: String) throws(ClientError) -> Bool? {
                switch text {
                case nil: nil
                case "on", "yes", "true": true
                case "off", "no", "false": false
                default: throw ClientError(code: "invalid_value", message: "--\(name) is on or off", exitCode: ExitStatus.usage)
                }
            }
            let request = PreferencesRequest(
                maskNewDocuments: try flag(maskNewDocuments, "mask-new-documents"),
                notifyEveryAccess: try flag(notifyEveryAccess, "notify-every-access"),
                notifyNewDocuments: try flag(notifyNewDocuments, "notify-new-documents"))
            AccessCommand.show(try await global.client().setPreferences(try global.patientINS(), request), json: global.json)
        }
    }
}
