@testable import CoffreStore
import CoffreDomain
import CoffreTesting
import Testing

@Suite struct IndexSettingsTests {
    /// GRDB sets WAL connections to synchronous=NORMAL; the vault's writer must run FULL, and
    /// delete securely, or a power cut could drop a committed wrapped key.
    @Test func theWriterCommitsWithFullSyncAndSecureDelete() async throws {
        let fixture = try await VaultFixture()
        let settings = try await fixture.vault.sqlite.durabilitySettings()
        #expect(settings.synchronous == 2)
        #expect(settings.secureDelete == 1)
    }

    @Test func aSecondVaultOnTheSameStateDirectoryIsRefused() async throws {
        let fixture = try await VaultFixture()
        let error = await #expect(throws: StoreError.self) {
            _ = try await VaultFixture.open(state: fixture.state, keys: fixture.keys, pool: fixture.pool, arena: fixture.arena, max: 1000)
        }
        #expect(error?.message.contains("another coffred") == true)
    }
}
