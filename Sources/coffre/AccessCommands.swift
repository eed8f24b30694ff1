import CoffreDomain
import ArgumentParser
import CoffreAPI
import CoffreClient

/// `coffre access …`: who may see the dossier, as the patient decides.
struct AccessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "access",
        abstract: "Authorise, block and list professionals; emergency switches.",
        subcommands: [Grant.self, Revoke.self, Block.self, Unblock.self, List.self, Emergency.self])

    struct Grant: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Authorise a professional (or name an administrator).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The professional's RPPS number.") var rpps: String
        @Flag(help: "Name an administrator: the médecin traitant's rights, masked documents included.") var administrator = false

        func execute() async throws(ClientError) {
            let view = try await global.client().changeAccess(
                try global.patientINS(), list: administrator ? "administrators" : "authorized", member: rpps, add: true)
            AccessCommand.show(view, json: global.json)
        }
    }

    struct Revoke: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw a professional's authorisation (or administrator rights).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The professional's RPPS number.") var rpps: String
        @Flag(help: "Withdraw administrator rights.") var administrator = false

        func execute() async throws(ClientError) {
            let view = try await global.client().changeAccess(
                try global.patientINS(), list: administrator ? "administrators" : "authorized", member: rpps, add: false)
            AccessCommand.show(view, json: global.json)
        }
    }

    struct Block: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Block a professional (RPPS) or an organisation (FINESS).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "An RPPS (11 digits) or FINESS (9 digits) number.") var id: String

        func execute() async throws(ClientError) {
            AccessCommand.show(
                try await global.client().changeAccess(try global.patientINS(), list: "blocked", member: id, add: true), json: global.json)
        }
    }

    struct Unblock: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a block.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "An RPPS (11 digits) or FINESS (9 digits) number.") var id: String

        func execute() async throws(ClientError) {
            AccessCommand.show(
                try await global.client().changeAccess(try global.patientINS(), list: "blocked", member: id, add: false), json: global.json)
        }
    }

    struct List: ClientCommand {
        static let configuration = CommandConfiguration(abstract: "Show who may see the dossier.")
        @OptionGroup var global: GlobalOptions

        func execute() async throws(ClientError) {
            AccessCommand.show(try await global.client().access(try global.patientINS()), json: global.json)
        }
    }

    struct Emergency: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allow or refuse emergency access beforehand.",
            discussion: "Switches: bris_de_glace, centre_15, masked (show masked documents in an emergency; off by default).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Allow this switch.") var allow: [String] = []
        @Option(help: "Refuse this switch.") var deny: [String] = []

        func execute() async throws(ClientError) {
            var request = EmergencyRequest()
            for (names, value) in [(allow, true), (deny, false)] {
                for name in names {
                    switch name {
                    case "bris_de_glace": request.brisDeGlace = value
                    case "centre_15": request.centre15 = value
                    case "masked": request.masked = value
                    default:
                        throw ClientError(
                            code: "invalid_switch", message: "\(name) is not bris_de_glace, centre_15 or masked", exitCode: ExitStatus.usage
                        )
                    }
                }
            }
            guard request.brisDeGlace != nil || request.centre15 != nil || request.masked != nil else {
                throw ClientError(
                    code: "invalid_switch", message: "say --allow or --deny with bris_de_glace, centre_15 or masked",
                    exitCode: ExitStatus.usage)
            }
            AccessCommand.show(try await global.client().setEmergency(try global.patientINS(), request), json: global.json)
        }
    }

    static func show(_ view: AccessView, json: Bool) {
        if json { return Output.json(view) }
        func list(_ values: [String]) -> String { values.isEmpty ? "none" : values.joined(separator: ", ") }
        func onOff(_ value: Bool) -> String { value ? "allowed" : "refused" }
        Output.fields([
            ("médecin traitant", view.attendingDoctor ?? "none"), ("administrators", list(view.administrators)),
            ("authorised", list(view.authorized)), ("blocked", list(view.blocked)),
            ("blocked organisations", list(view.blockedOrganizations)),
            ("bris de glace", onOff(view.emergency.brisDeGlace)), ("centre 15", onOff(view.emergency.centre15)),
            ("masked in emergency", view.emergency.masked ? "shown" : "hidden"),
            ("mask new documents", view.preferences.maskNewDocuments ? "yes" : "no"),
            ("notify every access", view.preferences.notifyEveryAccess ? "yes" : "no"),
            ("notify new documents", view.preferences.notifyNewDocuments ? "yes" : "no"),
        ])
    }
}
