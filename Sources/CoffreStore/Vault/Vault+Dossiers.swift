import CoffreCrypto
import CoffreDomain
import Foundation
import Logging

extension Vault {
    /// Creates the patient's dossier with a fresh dossier key and default settings.
    func createDossier(for ins: INS) async throws(StoreError) -> DossierRecord {
        let (row, record) = try newDossier(for: ins)
        try await index.insertDossier(row)
        logger.info("dossier created", metadata: ["dossier.id": "\(record.id)"])
        return record
    }

    /// The patient's dossier (with the patient's access settings), or `dossierNotFound`.
    func dossier(for ins: INS) async throws(StoreError) -> DossierRecord {
        let opened = try await openDossier(ins)
        return record(from: opened.row, ins: ins, fields: opened.fields, key: opened.key)
    }

    /// The dossier row for `ins`, its unwrapped key and its opened sealed fields.
    func openDossier(_ ins: INS) async throws(StoreError) -> (row: DossierRow, key: SymmetricKey, fields: SealedDossierFields) {
        guard let row = try await index.dossier(insHash: insHash(ins)), row.state != "purging" else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        let (key, fields) = try openDossierRow(row, ins: ins)
        return (row, key, fields)
    }

    /// Unwraps a dossier row's key and opens its sealed fields. The look-up hash is a clear
    /// column: check that the row really is this patient's (its sealed INS, authenticated under
    /// its own key), so that a tampered index cannot send one patient's requests to another's
    /// dossier.
    /// - Parameter ins: the patient the row must belong to; nil for jobs that go through every
    ///   dossier (retention), which have no INS to check against.
    func openDossierRow(_ row: DossierRow, ins: INS?) throws(StoreError) -> (SymmetricKey, SealedDossierFields) {
        guard let version = UInt32(exactly: row.masterVersion), let master = masterKeys.current.key(version: version) else {
            throw StoreError(.keys, "dossier \(row.id) is wrapped by master key version \(row.masterVersion), which is not installed")
        }
        let id = DossierID(unchecked: row.id)
        let key = try Self.crypto { () throws(CryptoError) in
            try KeyWrap.unwrap(Array(row.wrappedKey), with: master, context: Self.dossierKeyContext(id, version), in: arena)
        }
        let fields: SealedDossierFields = try Self.open(Array(row.sealed), key: key, associatedData: Self.dossierAD(id))
        guard ins == nil || fields.ins == ins?.value else {
            throw StoreError(.integrity, "dossier \(row.id): its sealed INS does not match its look-up hash")
        }
        return (key, fields)
    }

    func record(from row: DossierRow, ins: INS, fields: SealedDossierFields, key: SymmetricKey) -> DossierRecord {
        DossierRecord(
            id: DossierID(unchecked: row.id), ins: ins, state: fields.lifecycle.state.rawValue, createdAt: row.createdAt,
            masterKeyVersion: UInt32(truncatingIfNeeded: row.masterVersion),
            keyGeneration: UInt32(truncatingIfNeeded: row.keyGeneration), settings: fields.settings, lifecycle: fields.lifecycle, key: key)
    }

    static func dossierKeyContext(_ id: DossierID, _ masterVersion: UInt32) -> WrapContext {
        WrapContext(purpose: "dossier-key", owners: [id.value], wrappingKeyVersion: masterVersion)
    }

    /// An earlier generation of a rekeyed dossier's key, as kept in `dossier_key_archive`.
    static func archivedKeyContext(_ id: DossierID, _ generation: UInt32, _ masterVersion: UInt32) -> WrapContext {
        WrapContext(purpose: "archived-dossier-key", owners: [id.value, String(generation)], wrappingKeyVersion: masterVersion)
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
