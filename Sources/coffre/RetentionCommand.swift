import ArgumentParser
import CoffreAPI
import CoffreClient
import Foundation

/// `coffre retention run [--dry-run]`: asks the daemon to purge every dossier past its date, in
/// batches, with a progress bar on a terminal and a summary. The daemon does the work; this
/// command never touches files.
struct RetentionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention", abstract: "The retention job (its systemd timer runs it daily).", subcommands: [Run.self])

    struct Run: ClientCommand {
        static let configuration = CommandConfiguration(
            abstract: "Purge every dossier past its retention date; --dry-run lists what would go and why.")
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Change nothing: list what would be purged or is held.") var dryRun = false
        @Option(help: "Dossiers per batch.") var batch = 500

        func execute() async throws(ClientError) {
            let client = try global.client()
            let due = try await client.retentionDue().due
            let bar = ProgressBar.make(count: due, label: dryRun ? "checking" : "purging")
            var summary = Summary(dryRun: dryRun)
            var cursor = ""
            while true {
                let result = try await client.retentionBatch(after: cursor, limit: batch, dryRun: dryRun)
                summary.add(result)
                bar?.advance(result.checked)
                if !global.json && (dryRun || result.failed > 0) {
                    for item in result.items where dryRun || item.verdict == "failed" {
                        Output.line("\(item.dossierId)  \(item.verdict)  \(item.reason)" + (item.purgeDate.map { "  due \($0)" } ?? ""))
                    }
                }
                cursor = result.cursor
                if result.done { break }
            }
            bar?.finish()
            if global.json {
                Output.json(summary)
            } else {
                let purged = dryRun ? "would purge" : "purged"
                Output.line("checked \(summary.checked), \(purged) \(summary.purged), held \(summary.held), failed \(summary.failed)")
            }
            if summary.failed > 0 {
                throw ClientError(
                    code: "retention_failures", message: "\(summary.failed) dossier(s) could not be purged; see above and the daemon's log",
                    exitCode: ExitStatus.ioFailure)
            }
        }
    }

    /// The run's totals (and, in a dry run, every dossier looked at).
    struct Summary: Encodable {
        var dryRun: Bool
        var checked = 0
        var purged = 0
        var held = 0
        var failed = 0
        var items: [RetentionBatchView.Item] = []

        mutating func add(_ batch: RetentionBatchView) {
            checked += batch.checked
            purged += batch.purged
            held += batch.held
            failed += batch.failed
            items += batch.items.filter { dryRun || $0.verdict != "purge" }
        }
    }
}
