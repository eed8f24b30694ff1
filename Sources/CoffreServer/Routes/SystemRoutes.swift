import CoffreAPI
import CoffreStore
import Hummingbird

/// `/v1/health` (anyone who can reach the socket) and `/v1/admin/status` (operators).
struct SystemRoutes: Sendable {
    let vault: Vault
    let developmentMode: Bool

    static let version = "0.1.0"

    func addHealth(to router: Router<CoffreRequestContext>) {
        router.get("v1/health") { _, _ in
            try json(HealthView(status: "ok", version: Self.version, developmentMode: developmentMode))
        }
    }

    func addAdmin(to group: RouterGroup<CoffreRequestContext>) {
        group.post("verify") { _, _ in
            let trace = try await vault.verifyTrace()
            return try json(
                VerifyReport(
                    ok: trace.problems.isEmpty, traceEntriesChecked: trace.entriesChecked,
                    traceCheckpointsChecked: trace.checkpointsChecked,
                    firstBrokenTraceEntry: trace.firstBrokenSeq, problems: trace.problems, traceSigningKey: trace.signingKey))
        }
        group.get("status") { _, _ in
            let status = vault.status()
            return try json(
                AdminStatusView(
                    activeMasterKeyVersion: status.activeMasterKeyVersion,
                    installedMasterKeyVersions: status.installedMasterKeyVersions,
                    keyArenaSlotsFree: status.arenaFree, keyArenaSlots: status.arenaSlots))
        }
    }
}
