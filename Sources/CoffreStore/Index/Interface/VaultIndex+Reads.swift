import CoffreDomain
import Foundation

/// Reads and writes of one statement's worth, each its own snapshot or transaction.
extension VaultIndex {
    func dossier(insHash: Data) async throws(StoreError) -> DossierRow? {
        try await lookUp("read a dossier") { try $0.dossier(insHash: insHash) }
    }

    func insertDossier(_ row: DossierRow) async throws(StoreError) {
        try await write("create a dossier") { try $0.insert(dossier: row) }
    }

    func document(id: String, dossierID: String) async throws(StoreError) -> DocumentRow? {
        try await lookUp("read a document") { try $0.document(id: id, dossierID: dossierID) }
    }

    func documents(dossierID: String, includeSuperseded: Bool) async throws(StoreError) -> [DocumentRow] {
        try await read("list documents") { try $0.documents(dossierID: dossierID, includeSuperseded: includeSuperseded) }
    }

    /// Every document row of a dossier, all versions.
    func allDocuments(dossierID: String) async throws(StoreError) -> [DocumentRow] {
        try await documents(dossierID: dossierID, includeSuperseded: true)
    }

    func blobNames(dossierID: String) async throws(StoreError) -> [BlobName] {
        try await read("list a dossier's documents") { try $0.blobNames(dossierID: dossierID) }
    }

    func packedBlobNames() async throws(StoreError) -> (names: [PackedBlobName], unreadable: Int) {
        try await read("list document ids") { try $0.packedBlobNames() }
    }

    func vaultKey(purpose: String) async throws(StoreError) -> VaultKeyRow? {
        try await read("read a vault key") { try $0.vaultKey(purpose: purpose) }
    }

    func insertVaultKeyIfAbsent(_ row: VaultKeyRow) async throws(StoreError) -> VaultKeyRow {
        try await write("store a vault key") { try $0.insertVaultKeyIfAbsent(row) }
    }

    func archivedKeys(dossierID: String) async throws(StoreError) -> [ArchivedDossierKeyRow] {
        try await read("read a dossier's earlier keys") { try $0.archivedKeys(dossierID: dossierID) }
    }

    func notifications(dossierID: String, recipient: String, includeAcknowledged: Bool) async throws(StoreError) -> [NotificationRow] {
        try await read("read notifications") {
            try $0.notifications(dossierID: dossierID, recipient: recipient, includeAcknowledged: includeAcknowledged)
        }
    }

    // MARK: Retention

    func retentionCandidates(dueBy now: Int64, after cursor: String, limit: Int) async throws(StoreError) -> [DossierRow] {
        try await read("find dossiers due for purge") { try $0.retentionCandidates(dueBy: now, after: cursor, limit: limit) }
    }

    func countRetentionCandidates(dueBy now: Int64) async throws(StoreError) -> Int {
        try await read("count dossiers due for purge") { try $0.retentionCandidateCount(dueBy: now) }
    }

    /// Step one of a purge (see `IndexTransaction.destroyDossierKey`): from this commit on,
    /// nothing of the dossier can be decrypted, wherever copies of its blobs are. A hold or a
    /// reopening that lands between the decision and this wins.
    func destroyDossierKey(id: String, ifSealedIs sealed: Data, at now: Int64) async throws(StoreError) -> Bool {
        try await write("destroy a dossier key") { try $0.destroyDossierKey(id: id, ifSealedIs: sealed, at: now) }
    }

    func deleteDossier(id: String) async throws(StoreError) {
        try await write("delete a purged dossier") { try $0.deleteDossier(id: id) }
    }

    // MARK: Trace

    func traceEntries(dossierID: String, after seq: Int64, limit: Int) async throws(StoreError) -> [TraceEntryRow] {
        try await read("read the trace") { try $0.traceEntries(dossierID: dossierID, after: seq, limit: limit) }
    }

    func traceEntries(from seq: Int64, limit: Int) async throws(StoreError) -> [TraceEntryRow] {
        try await read("read the trace") { try $0.traceEntries(from: seq, limit: limit) }
    }

    func lastTraceCheckpointSeq() async throws(StoreError) -> Int64? {
        try await read("read the trace") { try $0.lastTraceCheckpointSeq() }
    }

    func traceCheckpoints(after seq: Int64?, through last: Int64, limit: Int) async throws(StoreError) -> [TraceCheckpointRow] {
        try await read("read the trace") { try $0.traceCheckpoints(after: seq, through: last, limit: limit) }
    }

    // MARK: Verification

    func dossiers(after cursor: String, limit: Int) async throws(StoreError) -> [DossierRow] {
        try await read("list dossiers") { try $0.dossiers(after: cursor, limit: limit) }
    }

    func documentCountOutsidePurges() async throws(StoreError) -> Int {
        try await read("count documents") { try $0.documentCountOutsidePurges() }
    }

    func randomDocumentIDs(limit: Int) async throws(StoreError) -> [String] {
        try await read("pick documents") { try $0.randomDocumentIDs(limit: limit) }
    }

    func documentIDs(dossierID: String) async throws(StoreError) -> [String] {
        try await read("list documents") { try $0.documentIDs(dossierID: dossierID) }
    }

    /// A dossier's row and the rows of these of its documents, read in one snapshot.
    func dossierAndDocuments(dossierID: String, documentIDs: [String]) async throws(StoreError) -> (DossierRow?, [DocumentRow]) {
        try await read("read documents") { (try $0.dossier(id: dossierID), try $0.documents(ids: documentIDs, dossierID: dossierID)) }
    }
}
