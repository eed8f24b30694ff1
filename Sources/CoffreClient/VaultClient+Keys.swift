public import CoffreAPI
public import CoffreDomain
import NIOHTTP1

/// The key hierarchy, for operators.
extension VaultClient {
    /// Every master key version, what it wraps, and the rotation.
    public func masterKeys() async throws(ClientError) -> MasterKeysView {
        try await json(.GET, "/v1/admin/keys")
    }

    /// Has the daemon read its key files again (new versions become usable, not active).
    public func reloadMasterKeys() async throws(ClientError) -> MasterKeysView {
        try await json(.POST, "/v1/admin/keys/reload")
    }

    /// Makes the newest installed master key active and starts rewrapping every dossier key
    /// under it in the background.
    public func rotateMasterKey() async throws(ClientError) -> MasterKeysView {
        try await json(.POST, "/v1/admin/keys/rotate")
    }

    /// Retires a master key version that nothing uses any more.
    public func retireMasterKey(version: UInt32) async throws(ClientError) -> MasterKeysView {
        try await json(.POST, "/v1/admin/keys/\(version)/retire")
    }

    /// Gives the patient's dossier a new key; with `reencrypt`, every blob a new document key.
    public func rekeyDossier(_ ins: INS, reencrypt: Bool) async throws(ClientError) -> RekeyView {
        try await json(.POST, "/v1/admin/patients/\(ins.value)/rekey", body: try encode(RekeyRequest(reencrypt: reencrypt)))
    }
}
