import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import Logging

/// `/v1/patients/{ins}/dossier` and `/v1/patients/{ins}/access`: the dossier and what the
/// patient decides about it (médecin traitant, authorisations, blocks, emergency switches,
/// preferences). Each handler decodes, runs the operation through the pipeline, and encodes.
struct DossierRoutes: Sendable {
    let pipeline: OperationPipeline

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.post("dossier", use: create)
        group.get("dossier", use: show)
        group.put("dossier/attending-doctor", use: setAttendingDoctor)
        group.post("dossier/close", use: close)
        group.post("dossier/reopen") { _, context in try await dossierAnswer(.reopen, context) }
        group.post("dossier/oppose", use: oppose)
        group.patch("dossier/preferences", use: setPreferences)
        group.get("access", use: showAccess)
        group.patch("access/emergency", use: setEmergency)
        group.put("access/:list/:member") { request, context in try await change(add: true, request, context) }
        group.delete("access/:list/:member") { request, context in try await change(add: false, request, context) }
    }

    @Sendable func create(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        // The body is optional today; when present it must be a JSON object.
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        if body.readableBytes > 0 {
            _ = try decodeJSON(CreateDossierRequest.self, body)
        }
        let outcome = try await pipeline.perform(.createDossier, on: ins, by: try context.person())
        return try json(try view(outcome, documentCount: 0), status: .created)
    }

    @Sendable func show(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let (dossier, count) = try await pipeline.dossier(of: try context.patientINS(), by: try context.person())
        return try json(DossierView(dossier, documentCount: count, retention: pipeline.vault.retentionRules))
    }

    @Sendable func close(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(CloseDossierRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        return try await dossierAnswer(.close(death: body.death ?? false, deletionRequested: body.delete ?? false), context, ins: ins)
    }

    /// Opposition within the window destroys the dossier at once.
    @Sendable func oppose(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let outcome = try await pipeline.perform(.oppose, on: ins, by: try context.person())
        guard let id = outcome.destroyed else { throw StoreError(.io, "the opposition was allowed but nothing was destroyed") }
        return try json(DossierPurgedView(id: id, state: "purged"))
    }

    @Sendable func setAttendingDoctor(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(AttendingDoctorRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        guard let rpps = RPPS(body.rpps) else {
            throw Problem(.invalidIdentifier, detail: "an RPPS number is 11 digits with a Luhn check digit")
        }
        var profession: Profession? = nil
        if let code = body.profession {
            guard let parsed = Profession(code) else {
                throw Problem(.invalidIdentifier, detail: "a profession is a two-digit code of the RPPS nomenclature (10: médecin)")
            }
            profession = parsed
        }
        return try await accessAnswer(.setAttendingDoctor(rpps, profession: profession), ins, context)
    }

    @Sendable func setPreferences(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let change = try decodeJSON(PreferencesRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        return try await accessAnswer(.setPreferences(change), ins, context)
    }

    @Sendable func showAccess(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        try await accessAnswer(.readAccess, try context.patientINS(), context)
    }

    @Sendable func setEmergency(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let change = try decodeJSON(EmergencyRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        return try await accessAnswer(.setEmergency(change), ins, context)
    }

    func change(add: Bool, _ request: Request, _ context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        guard let list = context.parameters.get("list").flatMap(AccessList.init(rawValue:)) else {
            throw Problem(.routeNotFound, detail: "no such access list: use authorized, administrators or blocked")
        }
        let text = context.parameters.get("member") ?? ""
        let member: AccessMember
        if let rpps = RPPS(text) {
            member = .professional(rpps)
        } else if list == .blocked, let finess = FINESS(text) {
            // The canonical form (FINESS upper-cased: 2A/2B), so that it matches assertions.
            member = .organization(finess)
        } else {
            throw Problem(
                .invalidIdentifier,
                detail: list == .blocked
                    ? "block an RPPS number (11 digits) or an organisation's FINESS number (9 digits), each with its Luhn check digit"
                    : "an RPPS number is 11 digits with a Luhn check digit")
        }
        return try await accessAnswer(.changeAccessList(list, member: member, add: add), ins, context)
    }

    /// Runs an operation and answers the dossier as it left it.
    private func dossierAnswer(_ operation: DossierOperation, _ context: CoffreRequestContext, ins: INS? = nil) async throws -> Response {
        let caller = try context.person()
        let outcome = try await pipeline.perform(operation, on: try ins ?? context.patientINS(), by: caller)
        let dossier = try outcome.dossierLeft()
        // What this caller may see, as `GET dossier` counts: a representative must not learn
        // from a closing's answer that documents hidden from them exist.
        return try json(try view(outcome, documentCount: try await pipeline.visibleDocumentCount(in: dossier, to: caller)))
    }

    /// Runs an operation and answers the access settings as it left them.
    private func accessAnswer(_ operation: DossierOperation, _ ins: INS, _ context: CoffreRequestContext) async throws -> Response {
        let outcome = try await pipeline.perform(operation, on: ins, by: try context.person())
        let dossier = try outcome.dossierLeft()
        return try json(AccessView(dossier.settings))
    }

    private func view(_ outcome: OperationPipeline.Outcome, documentCount: Int) throws -> DossierView {
        let dossier = try outcome.dossierLeft()
        return DossierView(dossier, documentCount: documentCount, retention: pipeline.vault.retentionRules)
    }
}

extension AccessView {
    init(_ settings: DossierSettings) {
        self.init(
            attendingDoctor: settings.attendingDoctor, administrators: settings.administrators.sorted(),
            authorized: settings.authorized.sorted(), blocked: settings.blocked.sorted(),
            blockedOrganizations: settings.blockedOrganizations.sorted(),
            emergency: .init(
                brisDeGlace: !settings.refuseBrisDeGlace, centre15: !settings.refuseCentre15, masked: settings.showMaskedInEmergency),
            preferences: .init(
                maskNewDocuments: settings.maskNewDocuments, notifyEveryAccess: settings.notifyEveryAccess,
                notifyNewDocuments: settings.notifyNewDocuments))
    }
}

/// Decodes a small JSON body, or answers `malformed_json`.
func decodeJSON<T: Decodable>(_ type: T.Type, _ body: ByteBuffer) throws(Problem) -> T {
    let bytes = body.getBytes(at: body.readerIndex, length: body.readableBytes) ?? []
    do {
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    } catch {
        throw Problem(.malformedJSON, detail: "the body must be a JSON object of the documented shape; see docs/openapi.yaml")
    }
}

extension DossierView {
    init(_ dossier: DossierRecord, documentCount: Int, retention: RetentionRules) {
        let lifecycle = dossier.lifecycle
        self.init(
            id: dossier.id, ins: dossier.ins.value, state: dossier.state, createdAt: rfc3339(milliseconds: dossier.createdAt),
            documentCount: documentCount, closedAt: lifecycle.closedAt.map { rfc3339(milliseconds: $0) },
            closureReason: lifecycle.closureReason?.rawValue, deletionRequested: lifecycle.deletionRequested,
            purgeDate: lifecycle.purgeDate(rules: retention).map { rfc3339(milliseconds: $0) }, legalHold: lifecycle.isHeld)
    }
}
