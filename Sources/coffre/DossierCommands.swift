import ArgumentParser
import CoffreAPI
import CoffreClient
import CoffreDomain

struct DossierCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dossier",
        abstract: "Create and show a patient's dossier.",
        subcommands: [Create.self, Show.self, SetDoctor.self, Preferences.self])

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
            Output.fields([
                ("id", dossier.id.value), ("patient", dossier.ins), ("state", dossier.state),
                ("created", dossier.createdAt), ("documents", String(dossier.documentCount)),
            ])
        }
    }
}

extension DossierCommand {
    struct SetDoctor: ClientCommand {
        static let configuration = CommandConfiguration(commandName: "set-doctor", abstract: "Name the médecin traitant.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The doctor's RPPS number.") var rpps: String

        func execute() async throws(ClientError) {
            AccessCommand.show(try await global.client().setAttendingDoctor(try global.patientINS(), rpps: rpps), json: global.json)
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

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Operator commands (root, the operator group, or the daemon's user in development).",
        subcommands: [Status.self, Verify.self, Clock.self])

    struct Clock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or set the vault's clock (setting it: development mode only).", subcommands: [Show.self, Set.self],
            defaultSubcommand: Show.self)

        struct Show: ClientCommand {
            static let configuration = CommandConfiguration(abstract: "Show the time the dossier's rules run on.")
            @OptionGroup var global: GlobalOptions

            func execute() async throws(ClientError) {
                let clock = try await global.client().clock()
                if global.json { return Output.json(clock) }
                Output.line(clock.now + (clock.settable ? " (development clock)" : ""))
            }
        }

        struct Set: ClientCommand {
            static let configuration = CommandConfiguration(
                abstract: "Set the development clock to DATE (YYYY-MM-DD or RFC 3339); time runs on from there.")
            @OptionGroup var global: GlobalOptions
            @Argument(help: "The new date.") var date: String

            func execute() async throws(ClientError) {
                let clock = try await global.client().setClock(date)
                if global.json { return Output.json(clock) }
                Output.line(clock.now)
            }
        }
    }

    struct Verify: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the vault's integrity: the trace chain and its signed checkpoints. Exits 76 on any problem.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let report = try await global.client().verify()
            if global.json {
                Output.json(report)
            } else {
                Output.fields([
                    ("trace entries", String(report.traceEntriesChecked)), ("checkpoints", String(report.traceCheckpointsChecked)),
                    ("first broken entry", report.firstBrokenTraceEntry.map(String.init)), ("signing key", report.traceSigningKey),
                    ("result", report.ok ? "clean" : "\(report.problems.count) problem(s)"),
                ])
                for problem in report.problems { Output.line("problem: " + problem) }
            }
            if !report.ok {
                throw ClientError(code: "integrity_error", message: "the vault failed verification", exitCode: ExitStatus.integrity)
            }
        }
    }

    struct Status: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show the daemon's health and key versions.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            let client = try global.client()
            let health = try await client.health()
            let status = try await client.adminStatus()
            if global.json { return Output.json(status) }
            Output.fields([
                ("status", health.status), ("version", health.version),
                ("development mode", String(health.developmentMode)),
                ("active master key", String(status.activeMasterKeyVersion)),
                ("installed master keys", status.installedMasterKeyVersions.map(String.init).joined(separator: ", ")),
                ("key arena", "\(status.keyArenaSlotsFree) of \(status.keyArenaSlots) slots free"),
            ])
        }
    }
}
