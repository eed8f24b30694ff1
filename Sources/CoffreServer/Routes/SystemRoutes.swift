import CoffreAPI
import CoffreDomain
import Foundation
import CoffreStore
import Hummingbird
import Logging

/// `/v1/health` (anyone who can reach the socket) and `/v1/admin/status` (operators).
struct SystemRoutes: Sendable {
    let vault: Vault
    let pipeline: OperationPipeline
    let developmentMode: Bool
    let clock: any VaultClock
    /// The settable clock, in development mode only.
    let developmentClock: SettableClock?
    let logger: Logger

    static let version = "0.1.0"

    func addHealth(to router: Router<CoffreRequestContext>) {
        router.get("v1/health") { _, _ in
            // A read on the index: "ok" must mean the vault answers, not only that the socket does.
            try await vault.checkHealth()
            return try json(HealthView(status: "ok", version: Self.version, developmentMode: developmentMode))
        }
    }

    func addAdmin(to group: RouterGroup<CoffreRequestContext>) {
        group.get("clock") { _, _ in
            try json(ClockView(now: rfc3339(milliseconds: clock.now()), settable: developmentClock != nil))
        }
        group.post("clock") { request, context in
            let body = try decodeJSON(SetClockRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
            guard let developmentClock else {
                throw Problem(.developmentOnly, detail: "the clock can be set in development mode only (coffred --dev)")
            }
            guard let milliseconds = parseTime(body.now) else {
                throw Problem(.malformedJSON, detail: "now is YYYY-MM-DD or an RFC 3339 time such as 2036-01-01T08:00:00Z")
            }
            try await pipeline.record(.setClock, by: try await context.operatorCaller())
            try developmentClock.set(to: milliseconds)
            return try json(ClockView(now: rfc3339(milliseconds: developmentClock.now()), settable: true))
        }
        group.post("verify") { request, context in
            var sample: Int? = nil
            if let text = request.uri.queryParameters.get("sample") {
                guard let value = Int(text), value >= 0 else { throw Problem(.malformedRequest, detail: "sample is a number of documents") }
                sample = value
            }
            // Decided and traced before the status line goes, so that a refusal is an answer.
            let verification = try await pipeline.verification(sample: sample, by: try await context.operatorCaller())
            if request.headers[.accept]?.contains(VerifyStream.mediaType) == true {
                return VerifyStream.response(verification, logger: logger)
            }
            return try json(try await VerifyStream.report(verification, progress: nil))
        }
        group.get("status") { _, context in
            let status = try await pipeline.status(by: try await context.operatorCaller())
            return try json(
                AdminStatusView(
                    activeMasterKeyVersion: status.activeMasterKeyVersion,
                    installedMasterKeyVersions: status.installedMasterKeyVersions,
                    keyArenaSlotsFree: status.arenaFree, keyArenaSlots: status.arenaSlots))
        }
    }
}

/// Milliseconds since the epoch of `YYYY-MM-DD` (midnight UTC) or an RFC 3339 time.
func parseTime(_ text: String) -> Int64? {
    if let date = CareDate(text) {
        return parseTime(date.value + "T00:00:00Z")
    }
    guard let date = try? Date(text, strategy: .iso8601) else { return nil }
    return Int64(date.timeIntervalSince1970 * 1000)
}
