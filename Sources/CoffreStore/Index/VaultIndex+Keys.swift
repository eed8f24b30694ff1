import CoffreDomain
import GRDB

/// The vault's own keys (the INS look-up key, the trace signing seed), wrapped.
extension VaultIndex {
    func vaultKey(purpose: String) async throws(StoreError) -> VaultKeyRow? {
        try await read("read a vault key") { db in try VaultKeyRow.fetchOne(db, key: purpose) }
    }

    /// Inserts the vault key unless one exists, and returns the one that is stored (so that two
    /// first starts racing each other agree).
    func insertVaultKeyIfAbsent(_ row: VaultKeyRow) async throws(StoreError) -> VaultKeyRow {
        try await write("store a vault key") { db in
            if let existing = try VaultKeyRow.fetchOne(db, key: row.purpose) { return existing }
            try row.insert(db)
            return row
        }
    }
}
