import CoffreDomain
import Foundation
import Logging

extension Vault {
    /// Applies `change` to document `id` of the patient's dossier (every version of it) and
    /// returns the new record, untraced: for the vault's own tests and tools. Requests go
    /// through `OperationPipeline`, which records the change with its trace entry.
    /// - Throws: `documentNotFound`, or `conflict` for a deletion of a version that is not
    ///   current or a release of a document that is not hidden.
    func change(_ id: DocumentID, in ins: INS, _ change: DocumentChange) async throws(StoreError) -> DocumentRecord {
        let dossier = try await self.dossier(for: ins)
        let vault = self
        let row = try await index.write("update a document's versions") { transaction in
            try vault.changeDocument(id, change, in: dossier, transaction)
        }
        logger.info("document changed", metadata: ["dossier.id": "\(dossier.id)", "document.id": "\(id)"])
        guard let key = dossier.key else { throw StoreError(.keys, "the dossier key is not open") }
        return try record(from: row, dossierKey: key)
    }
}
