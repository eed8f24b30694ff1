import ArgumentParser
import CoffreAPI
import CoffreClient
import Foundation

struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "Operator commands (root, the operator group, or the daemon's user in development).",
        subcommands: [Status.self, Verify.self, KeysCommand.self, Clock.self])

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
            abstract: """
                Check the vault's integrity: the index, every key, every blob read to the end against its hash, orphans, \
                the trace chain and its signed checkpoints. Exits 76 on any problem.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(help: "Read only this many documents' blobs, picked at random (a quick partial run).") var sample: Int?

        func execute() async throws(ClientError) {
            let bar = LateProgressBar(label: "verifying")
            let report = try await global.client().verify(sample: sample, progress: ProgressBar.isAvailable ? bar.update : nil)
            bar.finish()
            if global.json {
                Output.json(report)
            } else {
                Output.fields([
                    ("dossiers", String(report.dossiersChecked)), ("documents read", String(report.documentsChecked)),
                    ("orphan blobs", String(report.orphanBlobs)),
                    ("trace entries", String(report.traceEntriesChecked)), ("checkpoints", String(report.traceCheckpointsChecked)),
                    ("anchors", String(report.traceAnchorsChecked)),
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
