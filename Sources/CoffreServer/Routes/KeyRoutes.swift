import CoffreAPI
import CoffreDomain
import CoffreStore
import Hummingbird

/// Operator routes for the key hierarchy (`/v1/admin/keys…`, `/v1/admin/patients/{ins}/rekey`).
/// Every operation is traced with the operator's uid before it is done.
struct KeyRoutes: Sendable {
    let vault: Vault
    let pipeline: OperationPipeline
    let rotation: KeyRotationService
    /// In development mode, where `rotate` may create the next master key itself.
    let developmentKeyDirectory: String?

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.get("keys") { _, context in
            try json(MasterKeysView(try await pipeline.keyStatus(by: try await context.operatorCaller())))
        }
        group.post("keys/reload") { _, context in
            try json(MasterKeysView(try await pipeline.reloadKeys(by: try await context.operatorCaller())))
        }
        group.post("keys/rotate") { _, context in
            let status = try await pipeline.rotateKeys(
                by: try await context.operatorCaller(), developmentKeyDirectory: developmentKeyDirectory)
            rotation.wake()
            return try json(MasterKeysView(status), status: .accepted)
        }
        group.post("keys/:version/retire") { _, context in
            guard let text = context.parameters.get("version"), text.utf8.allSatisfy({ (48...57).contains($0) }),
                let version = UInt32(text), version > 0
            else {
                throw Problem(.invalidIdentifier, detail: "a master key version is a whole number from 1")
            }
            return try json(MasterKeysView(try await pipeline.retireKey(version, by: try await context.operatorCaller())))
        }
        group.post("patients/:ins/rekey") { request, context in
            let ins = try context.patientINS()
            let body = try decodeJSON(RekeyRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
            let result = try await pipeline.rekey(ins, reencrypt: body.reencrypt ?? false, by: try await context.operatorCaller())
            return try json(
                RekeyView(
                    dossierId: result.dossierID.value, keyGeneration: result.keyGeneration,
                    documentKeysRewrapped: result.documentKeysRewrapped, blobsReencrypted: result.blobsReencrypted))
        }
    }
}

extension MasterKeysView {
    init(_ status: MasterKeyStatus) {
        self.init(
            activeVersion: status.activeVersion,
            versions: status.versions.map {
                Version(
                    version: $0.version, state: $0.state, installed: $0.installed, dossierKeys: $0.dossierKeys,
                    archivedDossierKeys: $0.archivedDossierKeys, vaultKeys: $0.vaultKeys, addedAt: rfc3339(milliseconds: $0.addedAt),
                    retiredAt: $0.retiredAt.map { rfc3339(milliseconds: $0) }, predatesLastPurge: $0.predatesLastPurge)
            },
            rotation: status.rotation.map {
                Rotation(
                    targetVersion: $0.targetVersion, state: $0.finishedAt == nil ? "running" : "finished",
                    startedAt: rfc3339(milliseconds: $0.startedAt), finishedAt: $0.finishedAt.map { rfc3339(milliseconds: $0) },
                    done: $0.done, total: $0.total, failed: $0.failed)
            },
            purges: status.purges.map { Purges(lastAt: rfc3339(milliseconds: $0.lastAt), dossiers: $0.dossiers) })
    }
}
