import ArgumentParser
import CoffreAPI
import CoffreClient

/// `coffre notifications [--ack ID|--all]`: the outbox of the patient (or of the médecin traitant).
struct NotificationsCommand: ClientCommand {
    static let configuration = CommandConfiguration(
        commandName: "notifications",
        abstract: "List pending notifications; --ack ID or --all acknowledges them.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "Acknowledge this notification (repeatable).") var ack: [String] = []
    @Flag(help: "Acknowledge every pending notification.") var all = false
    @Flag(help: "List acknowledged notifications too.") var includeAcknowledged = false

    func execute() async throws(ClientError) {
        let client = try global.client()
        let ins = try global.patientINS()
        if all || !ack.isEmpty {
            let result = try await client.acknowledge(ins, ids: all ? nil : ack)
            if global.json { return Output.json(result) }
            return Output.line("\(result.acknowledged) acknowledged")
        }
        let list = try await client.notifications(ins, includeAcknowledged: includeAcknowledged)
        if global.json { return Output.json(list) }
        for notice in list.notifications {
            let state = notice.acknowledgedAt == nil ? "NEW" : "seen"
            Output.line("\(notice.id)  \(notice.createdAt)  \(state)  \(notice.kind)  \(notice.message)")
        }
    }
}
