import CoffreCrypto
public import CoffreDomain
import Foundation
import Logging

extension Vault {
    /// Creates the patient's dossier with a fresh dossier key.
    public func createDossier(for ins: INS) async throws(StoreError) -> DossierRecord {
        let id = DossierID(unchecked: SecureRandom.hexIdentifier())
        let version = masterKeys.activeVersion
        let dossierKey = try Self.crypto { () throws(CryptoError) in try SymmetricKey.random(in: arena) }
        let wrapped = KeyWrap.wrap(dossierKey, with: masterKeys.activeKey, context: Self.dossierKeyContext(id, version))
        let sealed = try Self.seal(SealedDossierFields(ins: ins.value), key: dossierKey, associatedData: Self.dossierAD(id))
        let now = clock.now()
        try await index.insertDossier(
            DossierRow(
                id: id.value, insHash: insHash(ins), state: "active", createdAt: now,
                masterVersion: Int64(version), keyGeneration: 1, wrappedKey: Data(wrapped), sealed: Data(sealed)))
        logger.info("dossier created", metadata: ["dossier.id": "\(id)"])
        return DossierRecord(id: id, ins: ins, state: "active", createdAt: now, masterKeyVersion: version)
    }

    /// The patient's dossier, or `dossierNotFound`.
    public func dossier(for ins: INS) async throws(StoreError) -> DossierRecord {
        let (row, _) = try await openDossier(ins)
        return DossierRecord(
            id: DossierID(unchecked: row.id), ins: ins, state: row.state, createdAt: row.createdAt,
            masterKeyVersion: UInt32(row.masterVersion))
    }

    /// Number of current documents in the patient's dossier.
    public func currentDocumentCount(in dossier: DossierRecord) async throws(StoreError) -> Int {
        try await index.currentDocumentCount(dossierID: dossier.id.value)
    }

    /// The dossier row for `ins` and its unwrapped key.
    func openDossier(_ ins: INS) async throws(StoreError) -> (DossierRow, SymmetricKey) {
        guard let row = try await index.dossier(insHash: insHash(ins)) else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        let version = UInt32(row.masterVersion)
        guard let master = masterKeys.key(version: version) else {
            throw StoreError(.keys, "dossier \(row.id) is wrapped by master key version \(version), which is not installed")
        }
        let id = DossierID(unchecked: row.id)
        let key = try Self.crypto { () throws(CryptoError) in
            try KeyWrap.unwrap(Array(row.wrappedKey), with: master, context: Self.dossierKeyContext(id, version), in: arena)
        }
        // The look-up hash is a clear column: check that the row found really is this patient's
        // (its sealed INS, authenticated under its own key), so that a tampered index cannot
        // send one patient's requests to another's dossier.
        let fields: SealedDossierFields = try Self.open(Array(row.sealed), key: key, associatedData: Self.dossierAD(id))
        guard fields.ins == ins.value else {
            throw StoreError(.integrity, "dossier \(row.id): its sealed INS does not match its look-up hash")
        }
        return (row, key)
    }

    static func dossierKeyContext(_ id: DossierID, _ masterVersion: UInt32) -> WrapContext {
        WrapContext(purpose: "dossier-key", owners: [id.value], wrappingKeyVersion: masterVersion)
    }

    static func dossierAD(_ id: DossierID) -> [UInt8] { Array("coffre/dossier/v1/\(id.value)".utf8) }

    static func seal<T: Encodable>(_ value: T, key: SymmetricKey, associatedData: [UInt8]) throws(StoreError) -> [UInt8] {
        do {
            var plaintext = Array(try JSONEncoder().encode(value))
            defer { secureZero(&plaintext) }
            return SealedBox.seal(plaintext, with: key, associatedData: associatedData)
        } catch {
            throw StoreError(.io, "cannot encode a sealed record")
        }
    }

    static func open<T: Decodable>(_ sealed: [UInt8], key: SymmetricKey, associatedData: [UInt8]) throws(StoreError) -> T {
        var plaintext = try crypto { () throws(CryptoError) in try SealedBox.open(sealed, with: key, associatedData: associatedData) }
        defer { secureZero(&plaintext) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(plaintext))
        } catch {
            throw StoreError(.integrity, "a sealed record does not decode")
        }
    }
}
