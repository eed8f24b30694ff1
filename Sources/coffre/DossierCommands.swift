import ArgumentParser
import CoffreAPI
import CoffreClient
import CoffreDomain

struct DossierCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dossier",
        abstract: "Create and show a patient's dossier.",
        subcommands: [Create.self, Show.self])

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

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Operator commands (root, the operator group, or the daemon's user in development).",
        subcommands: [Status.self])

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
