import ArgumentParser
import CoffreAPI
import CoffreClient
import Foundation

/// `coffre trace [--follow]`: the dossier's access trace, for the patient and the médecin traitant.
struct TraceCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace", abstract: "Show every access to the dossier: who, when, what, and the rule that decided.")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "Keep watching and print new entries as they come (Ctrl-C to stop).") var follow = false

    func execute() async throws(ClientError) {
        let client = try global.client()
        let ins = try global.patientINS()
        var after: Int64 = 0
        repeat {
            let list = try await client.trace(ins, after: after)
            for entry in list.entries {
                if global.json {
                    Output.jsonLine(entry)
                } else {
                    Output.line(Self.describe(entry))
                }
                after = max(after, entry.seq)
            }
            // A page short of the limit is the end of the trace (reading it added an entry of
            // its own, which the next page would show: do not chase it).
            if list.entries.count < TraceList.pageLimit {
                guard follow else { break }
                try? await Task.sleep(for: .seconds(1))
            }
        } while true
    }

    static func describe(_ entry: TraceEntryView) -> String {
        var who =
            entry.actor.map { actor in
                [actor.role, actor.id, actor.profession.map { "profession \($0)" }].compactMap { $0 }.joined(separator: " ")
            } ?? "-"
        if let mode = entry.mode, mode != "normal" { who += " [\(mode)\(entry.reason.map { ": \($0)" } ?? "")]" }
        let what =
            entry.action + (entry.documentId.map { " " + $0 } ?? "") + (entry.replacesDocumentId.map { " (replaces \($0))" } ?? "")
        let why = [entry.rule, entry.matrixVersion.map { "matrix \($0)" }, entry.errorCode].compactMap { $0 }.joined(separator: ", ")
        return "\(entry.seq)\t\(entry.at)\t\(entry.outcome.uppercased())\t\(who)\t\(what)\t\(why)"
    }
}
