import Foundation

/// A notification in the outbox. What it says (kind, message, who, which document) is sealed
/// under the dossier key; delivering it by e-mail or SMS is another program's job.
struct NotificationRow: Codable, Sendable {
    var id: String
    var dossierId: String
    var recipient: String
    var createdAt: Int64
    var acknowledgedAt: Int64?
    var sealed: Data

    enum CodingKeys: String, CodingKey {
        case id, dossierId = "dossier_id", recipient, createdAt = "created_at", acknowledgedAt = "acknowledged_at", sealed
    }

    var associatedData: [UInt8] { Array("coffre/notification/v1/\(id)/\(dossierId)/\(recipient)/\(createdAt)".utf8) }
}
