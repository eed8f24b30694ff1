import CoffreAPI
import CoffreDomain
import CoffreStore
import Hummingbird

/// Operator routes for the key hierarchy (`/v1/admin/keys…`, `/v1/admin/patients/{ins}/rekey`).
/// Every operation is traced with the operator's uid before it is done.
struct KeyRoutes: Sendable {
    let vault: Vault
    let rotation: KeyRotationService
    /// In development mode, where `rotate` may create the next master key itself.
    let developmentKeyDirectory: String?

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.get("keys") { _, _ in try json(MasterKeysView(try await vault.masterKeyStatus())) }
        group.post("keys/reload") { _, context in
            try await traceOperator("keys.reload", dossier: nil, context, vault: vault)
            return try json(MasterKeysView(try await vault.reloadMasterKeys()))
        }
        group.post("keys/rotate") { _, context in
            try await traceOperator("keys.rotate", dossier: nil, context, vault: vault)
            let status = try await vault.startRotation(developmentKeyDirectory: developmentKeyDirectory)
            rotation.wake()
            return try json(MasterKeysView(status), status: .accepted)
        }
        group.post("keys/:version/retire") { _, context in
            guard let text = context.parameters.get("version"), text.utf8.allSatisfy({ (48...57).contains($0) }),
                let version = UInt32(text), version > 0
            else {
                throw Problem(.invalidIdentifier, detail: "a master key version is a whole number from 1")
            }
            try await traceOperator("keys.retire", dossier: nil, context, vault: vault)
            return try json(MasterKeysView(try await vault.retireMasterKey(version: version)))
        }
        group.post("patients/:ins/rekey") { request, context in
            let ins = try context.patientINS()
            let body = try decodeJSON(RekeyRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
            try await traceOperator("dossier.rekey", dossier: try await vault.dossier(for: ins), context, vault: vault)
            let result = try await vault.rekeyDossier(for: ins, reencrypt: body.reencrypt ?? false)
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

/// Operators act through the socket, not with an assertion: the trace names their uid. Written
/// before the operation, like every access (fail closed).
func traceOperator(_ action: String, dossier: DossierRecord?, _ context: CoffreRequestContext, vault: Vault) async throws {
    let uid = (try? await context.peerCredentials().uid).map(String.init) ?? "unknown"
    try await vault.recordTrace(
        action: action, outcome: .allowed, detail: TraceDetail(actorRole: "operator", actorID: "uid \(uid)", rule: "operator"),
        dossier: dossier)
}
