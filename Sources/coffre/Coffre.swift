import ArgumentParser
import CoffreClient
import Foundation

/// `coffre`: the thin client of the Coffre vault.
@main
struct Coffre: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coffre",
        abstract: "The thin client of the Coffre health-document vault.",
        discussion: """
            Global options (--socket, --as, --mode, --reason, --assertion, --json, --patient) may \
            come before or after the command words. Exit codes: 0 ok, 64 usage, 65 invalid request, \
            66 not found, 69 daemon unreachable, 70 daemon failure, 73 cannot create output, \
            74 storage failure, 75 busy, 76 integrity failure, 77 not permitted.
            """,
        subcommands: [
            DossierCommand.self, DocCommand.self, AccessCommand.self, TraceCommand.self, NotificationsCommand.self, AdminCommand.self,
            RetentionCommand.self,
        ])

    static func main() async {
        let arguments = ArgumentHoisting.hoist(Array(CommandLine.arguments.dropFirst()), options: GlobalOptions.names)
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// A command that talks to the daemon: it reports a `ClientError` the one documented way and
/// exits with its code.
protocol ClientCommand: AsyncParsableCommand {
    var global: GlobalOptions { get }
    func execute() async throws(ClientError)
}

extension ClientCommand {
    func run() async throws {
        do {
            try await execute()
        } catch {
            Output.error(error, json: global.json)
            throw ExitCode(error.exitCode)
        }
    }
}
