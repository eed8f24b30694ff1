import CoffreCrypto
public import CoffreDomain
import Foundation
import Logging
import NIOCore
import Synchronization

/// What a rekey did.
public struct RekeyResult: Sendable, Equatable {
    public var dossierID: DossierID
    /// The new dossier key's generation.
    public var keyGeneration: UInt32
    public var documentKeysRewrapped: Int
    public var blobsReencrypted: Int
}

/// Rekeying a dossier after a suspected compromise of its key.
///
/// A new dossier key replaces the old one; every document key is rewrapped under it and every
/// sealed record of the dossier (its own, its documents', its notifications') is sealed again.
/// With `reencrypt`, every blob is also re-encrypted under a new document key, so a leaked
/// document key opens nothing either.
///
/// The trace is not rewritten: its entries are chained over their ciphertext, so the old key
/// is kept, wrapped by the active master key, in `dossier_key_archive`, and the dossier's trace
/// reads entries of either generation. Purging the dossier destroys both.
///
/// Crash safety: re-encrypted blobs are written under new names (`<id>.<n>`) beside the old
/// ones; one transaction then switches every row and the dossier key at once; the old blobs
/// are removed only after that commit. A crash before the commit leaves new blobs as orphans, a
/// crash after it leaves old ones: the next start removes either, and no document is lost.
extension Vault {
    func rekeyDossier(for ins: INS, reencrypt: Bool) async throws(StoreError) -> RekeyResult {
        let (dossier, oldKey, _) = try await openDossier(ins)
        let dossierID = DossierID(unchecked: dossier.id)
        // Two rekeys of one dossier would write their new blobs under the same names.
        guard rekeysInFlight.insert(dossier.id) else {
            throw StoreError(.conflict, "this dossier is being rekeyed by another request; nothing was changed")
        }
        defer { rekeysInFlight.remove(dossier.id) }
        let oldGeneration = UInt32(truncatingIfNeeded: dossier.keyGeneration)
        let newGeneration = oldGeneration + 1
        let newKey = try Self.crypto { () throws(CryptoError) in try SymmetricKey.random(in: self.arena) }

        var reencrypted: [String: ReencryptedBlob] = [:]
        if reencrypt {
            do {
                for row in try await index.allDocuments(dossierID: dossier.id) {
                    reencrypted[row.id] = try await reencryptBlob(
                        row, dossierKey: oldKey, newDossierKey: newKey, newGeneration: newGeneration)
                }
            } catch {
                for blob in reencrypted.values { try? await blobs.remove(blob.name) }
                throw error
            }
        }

        let (holder, keyArena, prepared, dossierSeal) = (masterKeys, arena, reencrypted, seal)
        let outcome: (rewrapped: Int, replacedBlobs: [BlobName])
        do {
            outcome = try await index.write("rekey a dossier") { transaction in
                try Self.switchDossierKey(
                    dossierID, expectedGeneration: Int64(oldGeneration), from: oldKey, to: newKey, reencrypted: prepared,
                    masterKeys: holder.current, arena: keyArena, dossierSeal: dossierSeal, transaction: transaction)
            }
        } catch {
            for blob in reencrypted.values { try? await blobs.remove(blob.name) }
            throw error
        }
        for name in outcome.replacedBlobs {
            do {
                try await blobs.remove(name)
            } catch {
                logger.warning(
                    "an old blob of a rekeyed dossier could not be removed; the next unclean start or verify finds it",
                    metadata: ["dossier.id": "\(dossierID)", "blob": "\(name)"])
            }
        }
        logger.notice(
            "dossier rekeyed",
            metadata: CoffreEvent.dossierRekeyed.metadata([
                "dossier.id": "\(dossierID)", "key.generation": "\(newGeneration)", "rekey.reencrypted": "\(reencrypted.count)",
            ]))
        return RekeyResult(
            dossierID: dossierID, keyGeneration: newGeneration, documentKeysRewrapped: outcome.rewrapped,
            blobsReencrypted: reencrypted.count)
    }

    /// A document's content re-encrypted under a new document key, committed under a new name.
    struct ReencryptedBlob: Sendable {
        var name: BlobName
        /// The new document key, wrapped by the new dossier key.
        var wrappedKey: Data
    }

    private func reencryptBlob(
        _ row: DocumentRow, dossierKey: SymmetricKey, newDossierKey: SymmetricKey, newGeneration: UInt32
    ) async throws(StoreError) -> ReencryptedBlob {
        let id = DocumentID(unchecked: row.id)
        let dossierID = DossierID(unchecked: row.dossierId)
        let record = try record(from: row, dossierKey: dossierKey)
        let oldDocumentKey = try Self.crypto { () throws(CryptoError) in
            try KeyWrap.unwrap(
                Array(row.wrappedKey), with: dossierKey,
                context: Self.documentKeyContext(dossierID, id, UInt32(truncatingIfNeeded: row.keyGeneration)), in: arena)
        }
        let oldName = BlobName(id, version: UInt32(truncatingIfNeeded: row.blobVersion))
        let newName = BlobName(id, version: oldName.version + 1)
        let content = try await DocumentContent.open(
            record: record, reader: try await blobs.openReader(for: oldName), key: oldDocumentKey, arena: arena)
        let newDocumentKey = try Self.crypto { () throws(CryptoError) in try SymmetricKey.random(in: arena) }
        let writer = try await blobs.makeWriter(for: newName)
        do throws(StoreError) {
            let written = try await encrypt(
                PlaintextSequence(content: content), into: writer, key: newDocumentKey, documentID: id, declaredLength: row.size)
            await content.close()
            guard written.sha256 == record.sha256 else {
                throw StoreError(.integrity, "document \(id): the re-encrypted content does not match its recorded hash")
            }
            try await writer.commit()
        } catch {
            await content.close()
            await writer.abort()
            throw error
        }
        let wrapped = KeyWrap.wrap(newDocumentKey, with: newDossierKey, context: Self.documentKeyContext(dossierID, id, newGeneration))
        return ReencryptedBlob(name: newName, wrappedKey: Data(wrapped))
    }

    /// The switch, inside one write transaction: archive the old key, install the new one,
    /// rewrap every document key (or take the re-encrypted one) and reseal every record.
    /// - Returns: how many document keys now hang off the new key, and the blobs replaced.
    static func switchDossierKey(
        _ id: DossierID, expectedGeneration: Int64, from oldKey: SymmetricKey, to newKey: SymmetricKey,
        reencrypted: [String: ReencryptedBlob], masterKeys: MasterKeySnapshot, arena: SecureArena, dossierSeal: DossierSeal,
        transaction: any IndexTransaction
    ) throws -> (rewrapped: Int, replacedBlobs: [BlobName]) {
        guard var dossier = try transaction.dossier(id: id.value), dossier.state != "purging" else {
            throw StoreError(.dossierNotFound, "this patient has no dossier")
        }
        guard dossier.keyGeneration == expectedGeneration else {
            throw StoreError(.conflict, "the dossier was rekeyed by another request meanwhile; nothing was changed")
        }
        try dossierSeal.check(dossier, traced: nil)
        let old = UInt32(truncatingIfNeeded: expectedGeneration)
        let new = old + 1
        let master = masterKeys.activeVersion
        try transaction.insert(
            archivedKey: ArchivedDossierKeyRow(
                dossierId: id.value, keyGeneration: expectedGeneration, masterVersion: Int64(master),
                wrappedKey: Data(KeyWrap.wrap(oldKey, with: masterKeys.activeKey, context: archivedKeyContext(id, old, master)))))

        let fields: SealedDossierFields = try open(Array(dossier.sealed), key: oldKey, associatedData: dossierAD(id))
        dossier.sealed = Data(try seal(fields, key: newKey, associatedData: dossierAD(id)))
        dossier.wrappedKey = Data(KeyWrap.wrap(newKey, with: masterKeys.activeKey, context: dossierKeyContext(id, master)))
        dossier.masterVersion = Int64(master)
        dossier.keyGeneration = Int64(new)
        try transaction.update(dossier: dossier)

        var rewrapped = 0
        var replaced: [BlobName] = []
        var (before, versions): ([DocumentVersion], [DocumentVersion]) = ([], [])
        for var row in try transaction.documents(dossierID: id.value, includeSuperseded: true) {
            before.append(row.versionStamp)
            let document = DocumentID(unchecked: row.id)
            if let blob = reencrypted[row.id] {
                replaced.append(BlobName(document, version: UInt32(truncatingIfNeeded: row.blobVersion)))
                row.wrappedKey = blob.wrappedKey
                row.blobVersion = Int64(blob.name.version)
            } else {
                // Stored after the re-encryption pass began (or no re-encryption asked): rewrap.
                let documentKey = try crypto { () throws(CryptoError) in
                    try KeyWrap.unwrap(
                        Array(row.wrappedKey), with: oldKey,
                        context: documentKeyContext(id, document, UInt32(truncatingIfNeeded: row.keyGeneration)), in: arena)
                }
                row.wrappedKey = Data(KeyWrap.wrap(documentKey, with: newKey, context: documentKeyContext(id, document, new)))
            }
            let sealed: SealedDocumentFields = try open(Array(row.sealed), key: oldKey, associatedData: row.associatedData)
            row.keyGeneration = Int64(new)
            row.version += 1
            row.sealed = Data(try seal(sealed, key: newKey, associatedData: row.associatedData))
            try transaction.update(document: row)
            versions.append(row.versionStamp)
            rewrapped += 1
        }
        // Never sealed over rows that did not match the seal before.
        _ = try dossierSeal.check(before, of: dossier)
        try transaction.update(dossierSeal: dossierSeal.resealed(dossier, over: versions))
        for var row in try transaction.notifications(dossierID: id.value) {
            let sealed: SealedNotification = try open(Array(row.sealed), key: oldKey, associatedData: row.associatedData)
            row.sealed = Data(try seal(sealed, key: newKey, associatedData: row.associatedData))
            try transaction.update(notification: row)
        }
        return (rewrapped, replaced)
    }

    /// Earlier generations of a dossier's key, newest first, to open trace entries and
    /// notifications sealed before a rekey.
    func archivedDossierKeys(_ id: DossierID) async throws(StoreError) -> [SymmetricKey] {
        let rows = try await index.archivedKeys(dossierID: id.value)
        let masterKeys = self.masterKeys.current
        var keys: [SymmetricKey] = []
        for row in rows {
            let version = UInt32(truncatingIfNeeded: row.masterVersion)
            guard let master = masterKeys.key(version: version) else { continue }
            let context = Self.archivedKeyContext(id, UInt32(truncatingIfNeeded: row.keyGeneration), version)
            if let key = try? KeyWrap.unwrap(Array(row.wrappedKey), with: master, context: context, in: arena) { keys.append(key) }
        }
        return keys
    }
}

/// A document's plaintext as the byte buffers `encrypt` takes.
struct PlaintextSequence: AsyncSequence {
    typealias Element = ByteBuffer
    let content: DocumentContent

    struct AsyncIterator: AsyncIteratorProtocol {
        let content: DocumentContent
        mutating func next() async throws -> ByteBuffer? {
            guard let bytes = try await content.next() else { return nil }
            return ByteBuffer(bytes: bytes)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(content: content) }
}

/// A set of keys (dossier ids) with an operation under way.
final class InFlight: Sendable {
    private let members = Mutex<Set<String>>([])

    /// Adds `key`; false if it was there already.
    func insert(_ key: String) -> Bool { members.withLock { $0.insert(key).inserted } }

    func remove(_ key: String) { _ = members.withLock { $0.remove(key) } }
}
