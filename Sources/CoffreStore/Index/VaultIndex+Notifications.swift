import CoffreDomain
import GRDB

/// The notifications' outbox.
extension VaultIndex {
    /// Adds a notification; one with the same id already there is left as it is (so that a
    /// notice computed again is not sent twice).
    func insertNotification(_ row: NotificationRow) async throws(StoreError) {
        try await write("store a notification") { db in try Self.insertNotification(row, db) }
    }

    static func insertNotification(_ row: NotificationRow, _ db: Database) throws {
        try row.insert(db, onConflict: .ignore)
    }

    func notifications(dossierID: String, recipient: String, includeAcknowledged: Bool) async throws(StoreError) -> [NotificationRow] {
        try await read("read notifications") { db in
            var request = NotificationRow.filter(Column("dossier_id") == dossierID && Column("recipient") == recipient)
            if !includeAcknowledged { request = request.filter(Column("acknowledged_at") == nil) }
            return try request.order(Column("created_at"), Column("rowid")).fetchAll(db)
        }
    }

    /// Acknowledges `ids` (or every pending one when nil); returns how many changed.
    func acknowledgeNotifications(dossierID: String, recipient: String, ids: [String]?, at time: Int64) async throws(StoreError) -> Int {
        try await write("acknowledge notifications") { db in
            try Self.acknowledgeNotifications(dossierID: dossierID, recipient: recipient, ids: ids, at: time, db)
        }
    }

    /// `acknowledgeNotifications`, in the caller's transaction.
    static func acknowledgeNotifications(dossierID: String, recipient: String, ids: [String]?, at time: Int64, _ db: Database) throws -> Int
    {
        var request = NotificationRow.filter(
            Column("dossier_id") == dossierID && Column("recipient") == recipient && Column("acknowledged_at") == nil)
        if let ids { request = request.filter(ids.contains(Column("id"))) }
        return try request.updateAll(db, Column("acknowledged_at").set(to: time))
    }

    /// Every notification of a dossier, in the caller's transaction.
    static func notificationRows(dossierID: String, _ db: Database) throws -> [NotificationRow] {
        try NotificationRow.filter(Column("dossier_id") == dossierID).fetchAll(db)
    }

    static func update(notification row: NotificationRow, _ db: Database) throws { try row.update(db) }
}
