import CoffreDomain
import Foundation
import GRDB

/// The notifications' outbox.
extension SQLiteTransaction {
    func notifications(dossierID: String, recipient: String, includeAcknowledged: Bool) throws -> [NotificationRow] {
        var request = NotificationRow.filter(Column("dossier_id") == dossierID && Column("recipient") == recipient)
        if !includeAcknowledged { request = request.filter(Column("acknowledged_at") == nil) }
        return try request.order(Column("created_at"), Column("rowid")).fetchAll(db)
    }

    func notifications(dossierID: String) throws -> [NotificationRow] {
        try NotificationRow.filter(Column("dossier_id") == dossierID).fetchAll(db)
    }

    func insert(notification row: NotificationRow) throws { try row.insert(db, onConflict: .ignore) }

    func update(notification row: NotificationRow) throws { try row.update(db) }

    func acknowledgeNotifications(dossierID: String, recipient: String, ids: [String]?, at time: Int64) throws -> Int {
        var request = NotificationRow.filter(
            Column("dossier_id") == dossierID && Column("recipient") == recipient && Column("acknowledged_at") == nil)
        if let ids { request = request.filter(ids.contains(Column("id"))) }
        return try request.updateAll(db, Column("acknowledged_at").set(to: time))
    }
}
