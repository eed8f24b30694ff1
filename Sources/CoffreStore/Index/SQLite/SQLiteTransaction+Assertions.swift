import Foundation
import GRDB

/// The assertion replay guard.
extension SQLiteTransaction {
    func admit(assertion fingerprint: Data, forgettableAt: Int64) throws -> Bool {
        try db.cachedStatement(sql: "INSERT OR IGNORE INTO assertion_seen (fingerprint, forgettable_at) VALUES (?, ?)")
            .execute(arguments: [fingerprint, forgettableAt])
        return db.changesCount == 1
    }

    func forgetAssertions(through now: Int64) throws {
        try db.cachedStatement(sql: "DELETE FROM assertion_seen WHERE forgettable_at <= ?").execute(arguments: [now])
    }
}
