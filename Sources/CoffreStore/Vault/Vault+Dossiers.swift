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

    /// The dossier row for `ins`, checked, its unwrapped key and its opened sealed fields.
    func openDossier(_ ins: INS) async throws(StoreError) -> (row: DossierRow, key: SymmetricKey, fields: SealedDossierFields) {
        guard let row = try await checkedDossier(.insHash(insHash(ins)))?.row else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        let (key, fields) = try openDossierRow(row, ins: ins)
        return (row, key, fields)
    }

    /// Which dossier to read.
    enum DossierKey: Sendable {
        case insHash(Data)
        case id(String)
    }

    /// A dossier's row, and the document rows asked for, as one snapshot of the index showed
    /// them, checked against the dossier's seal and its trace.
    struct CheckedDossier: Sendable {
        var row: DossierRow
        /// The document named, if asked for and there.
        var document: DocumentRow?
        /// The dossier's documents, if a list was asked for.
        var documents: [DocumentRow] = []
    }

    /// Reads a dossier's row, and what is asked of its documents, in one snapshot, and checks
    /// them (`DossierSeal`): the row against its seal and against the generation its trace
    /// records, and the document rows read against the versions its seal counts. Those
    /// versions come from the cache for the dossier's generation, or else from every row's
    /// version, read in the same snapshot and checked against the seal's digest (once per
    /// change to the dossier). Nil if there is no such dossier, or it is being purged.
    /// - Parameters:
    ///   - document: a document whose row to read and check.
    ///   - listing: read and check the dossier's documents: current ones (false) or every
    ///     version (true).
    func checkedDossier(_ key: DossierKey, document: String? = nil, listing: Bool? = nil) async throws(StoreError) -> CheckedDossier? {
        struct Snapshot: Sendable {
            var checked: CheckedDossier
            var traced: Int64?
            var known: [String: Int64]?
            var scanned: [DocumentVersion]?
        }
        let verified = self.verified
        let checksDocuments = document != nil || listing != nil
        @Sendable func read(_ reader: any IndexReader, scanning: Bool) throws -> Snapshot? {
            let found: DossierRow?
            switch key {
            case .insHash(let hash): found = try reader.dossier(insHash: hash)
            case .id(let id): found = try reader.dossier(id: id)
            }
            guard let row = found, row.state != "purging" else { return nil }
            var snapshot = Snapshot(checked: CheckedDossier(row: row), traced: try reader.tracedGeneration(dossierID: row.id))
            if let document { snapshot.checked.document = try reader.document(id: document, dossierID: row.id) }
            if let listing { snapshot.checked.documents = try reader.documents(dossierID: row.id, includeSuperseded: listing) }
            if checksDocuments {
                snapshot.known = verified.versions(of: row.id, at: row.generation)
                if snapshot.known == nil && scanning { snapshot.scanned = try reader.documentVersions(dossierID: row.id) }
            }
            return snapshot
        }
        // A point read on the calling thread when it is one; lists, and a dossier whose rows
        // must all be read, off it.
        var snapshot: Snapshot? = nil
        if listing == nil { snapshot = try await index.lookUp("read a dossier") { try read($0, scanning: false) } }
        if listing != nil || (snapshot.map { checksDocuments && $0.known == nil } ?? false) {
            snapshot = try await index.read("read a dossier's documents") { try read($0, scanning: true) }
        }
        guard let snapshot else { return nil }
        let row = snapshot.checked.row
        do throws(StoreError) {
            try seal.check(row, traced: snapshot.traced)
            var versions = snapshot.known
            if versions == nil, let scanned = snapshot.scanned {
                let checked = try seal.check(scanned, of: row)
                verified.remember(checked, of: row.id, at: row.generation)
                versions = checked
            }
            if let versions {
                for document in [snapshot.checked.document].compactMap({ $0 }) + snapshot.checked.documents {
                    try DossierSeal.check(document, against: versions)
                }
                // Rows are never removed but with their dossier: one the seal counts is not gone.
                if let document, snapshot.checked.document == nil, versions[document] != nil {
                    throw StoreError(
                        .integrity,
                        "document \(document) of dossier \(row.id): its row is gone but the dossier's seal counts it (removed behind the "
                            + "vault's back); it is not served")
                }
            }
        } catch {
            // The operator must know which dossier: its id is random, and names no one.
            logger.error(
                "a dossier failed its integrity check and is not served",
                metadata: CoffreEvent.integrityFailure.metadata(["dossier.id": "\(row.id)", "error": "\(error.message)"]))
            throw error
        }
        return snapshot.checked
    }

    /// Seals the dossier's row again in the caller's transaction, after a change to its
    /// document rows: one generation on, its digest moved from the rows `removed` (as they
    /// were) to the rows `added` (as they now are). A row that no longer matches its seal is
    /// never sealed again: the change fails instead.
    func reseal(_ dossierID: String, removing removed: [DocumentRow], adding added: [DocumentRow], _ transaction: any IndexTransaction)
        throws
    {
        guard let row = try transaction.dossier(id: dossierID), row.state != "purging" else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        try seal.check(row, traced: nil)
        try transaction.update(
            dossierSeal: seal.resealed(row, removing: removed.map(\.versionStamp), adding: added.map(\.versionStamp)))
    }

    /// Seals the dossiers written before seals existed: each document row is sealed again with
    /// its version (1), and the dossier's row over them. Once, at the first start that has
    /// seals; a dossier at a time, each in one transaction.
    func sealUnsealedDossiers() async throws(StoreError) {
        var sealed = 0
        while true {
            let ids = try await index.read("find unsealed dossiers") { try $0.unsealedDossierIDs(limit: 100) }
            guard !ids.isEmpty else { break }
            for id in ids {
                let vault = self
                try await index.write("seal a dossier") { transaction in
                    guard let row = try transaction.dossier(id: id), row.seal == nil, row.state != "purging" else { return }
                    let key = try vault.openDossierRow(row, ins: nil).0
                    var versions: [DocumentVersion] = []
                    for document in try transaction.documents(dossierID: id, includeSuperseded: true) {
                        var current = document
                        if document.version == 0 {
                            current = try vault.resealed(document, key: key) { _, _ in }
                            try transaction.update(document: current)
                        }
                        versions.append(current.versionStamp)
                    }
                    try transaction.update(dossierSeal: vault.seal.resealed(row, over: versions))
                }
                sealed += 1
            }
        }
        if sealed > 0 { logger.notice("dossiers written before seals were sealed", metadata: ["dossiers": "\(sealed)"]) }
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
