import CoffreAPI
import CoffreDomain
import CoffreStore
import Foundation
import Hummingbird
import Logging

/// `/v1/patients/{ins}/dossier` and `/v1/patients/{ins}/access`: the dossier and what the
/// patient decides about it (médecin traitant, authorisations, blocks, emergency switches,
/// preferences).
struct DossierRoutes: Sendable {
    let vault: Vault
    let gatekeeper: Gatekeeper

    func add(to group: RouterGroup<CoffreRequestContext>) {
        group.post("dossier", use: create)
        group.get("dossier", use: show)
        group.put("dossier/attending-doctor", use: setAttendingDoctor)
        group.post("dossier/close", use: close)
        group.post("dossier/reopen", use: reopen)
        group.post("dossier/oppose", use: oppose)
        group.patch("dossier/preferences", use: setPreferences)
        group.get("access", use: showAccess)
        group.patch("access/emergency", use: setEmergency)
        for list in AccessList.allCases {
            group.put("access/\(list.rawValue)/:member") { request, context in try await change(list, add: true, request, context) }
            group.delete("access/\(list.rawValue)/:member") { request, context in try await change(list, add: false, request, context) }
        }
    }

    @Sendable func create(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let actor = try await gatekeeper.authorize(context, .createDossier, owner: ins, dossier: nil)
        // The body is optional today; when present it must be a JSON object.
        let body = try await request.body.collect(upTo: context.maxUploadSize)
        if body.readableBytes > 0 {
            _ = try decodeJSON(CreateDossierRequest.self, body)
        }
        let dossier = try await vault.createDossier(for: ins)
        // The gate's entry could not name a dossier that did not exist yet: open the dossier's
        // own trace with its creation.
        var detail = TraceDetail(actor: actor)
        detail.rule = "dossier.created"
        // Best effort: the gate's entry already traced the decision, and the dossier exists.
        do {
            try await vault.recordTrace(action: DossierAction.createDossier.rawValue, outcome: .allowed, detail: detail, dossier: dossier)
        } catch {
            context.logger.error("could not trace a new dossier's creation", metadata: ["dossier.id": "\(dossier.id)"])
        }
        return try json(view(dossier, documentCount: 0), status: .created)
    }

    @Sendable func show(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let dossier = try await vault.dossier(for: ins)
        let actor = try await gatekeeper.authorize(context, .readDossier, owner: ins, dossier: dossier)
        // The count of what this caller may see: a larger one would reveal masked or hidden documents.
        let count = try await vault.documents(in: ins).filter { gatekeeper.canSee(actor, $0, in: dossier) }.count
        return try json(view(dossier, documentCount: count))
    }

    @Sendable func close(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(CloseDossierRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        let death = body.death ?? false
        if death && body.delete == true {
            throw Problem(.invalidMetadata, detail: "a closure on death keeps the legal retention; it cannot ask for deletion")
        }
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, death ? .closeDossierOnDeath : .closeDossier, owner: ins, dossier: dossier)
        let updated = try await vault.changeLifecycle(
            for: ins, .close(reason: death ? .death : .patientRequest, deletionRequested: body.delete ?? false))
        return try json(view(updated, documentCount: try await vault.currentDocumentCount(in: updated)))
    }

    @Sendable func reopen(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, .reopenDossier, owner: ins, dossier: dossier)
        let updated = try await vault.changeLifecycle(for: ins, .reopen)
        return try json(view(updated, documentCount: try await vault.currentDocumentCount(in: updated)))
    }

    /// Opposition within the window destroys the dossier at once.
    @Sendable func oppose(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, .opposeDossier, owner: ins, dossier: dossier)
        try await vault.oppose(dossier)
        return try json(DossierPurgedView(id: dossier.id, state: "purged"))
    }

    @Sendable func setAttendingDoctor(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(AttendingDoctorRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        guard let rpps = RPPS(body.rpps) else {
            throw Problem(.invalidIdentifier, detail: "an RPPS number is 11 digits with a Luhn check digit")
        }
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, .manageDossier, owner: ins, dossier: dossier)
        let updated = try await vault.updateSettings(for: ins) { settings in
            settings.attendingDoctor = rpps.value
            // The médecin traitant cannot be blocked.
            settings.blocked.remove(rpps.value)
        }
        return try json(AccessView(updated.settings))
    }

    @Sendable func setPreferences(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(PreferencesRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, .manageDossier, owner: ins, dossier: dossier)
        let updated = try await vault.updateSettings(for: ins) { settings in
            if let value = body.maskNewDocuments { settings.maskNewDocuments = value }
            if let value = body.notifyEveryAccess { settings.notifyEveryAccess = value }
            if let value = body.notifyNewDocuments { settings.notifyNewDocuments = value }
        }
        return try json(AccessView(updated.settings))
    }

    @Sendable func showAccess(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, .readAccessSettings, owner: ins, dossier: dossier)
        return try json(AccessView(dossier.settings))
    }

    @Sendable func setEmergency(_ request: Request, context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let body = try decodeJSON(EmergencyRequest.self, try await request.body.collect(upTo: context.maxUploadSize))
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, .manageDossier, owner: ins, dossier: dossier)
        let updated = try await vault.updateSettings(for: ins) { settings in
            if let allow = body.brisDeGlace { settings.refuseBrisDeGlace = !allow }
            if let allow = body.centre15 { settings.refuseCentre15 = !allow }
            if let allow = body.masked { settings.showMaskedInEmergency = allow }
        }
        return try json(AccessView(updated.settings))
    }

    func change(_ list: AccessList, add: Bool, _ request: Request, _ context: CoffreRequestContext) async throws -> Response {
        let ins = try context.patientINS()
        let text = context.parameters.get("member") ?? ""
        let finess = list == .blocked ? FINESS(text) : nil
        let isOrganization = finess != nil
        // The canonical form (FINESS upper-cased: 2A/2B), so that it matches assertions.
        let member = finess?.value ?? text
        guard RPPS(member) != nil || isOrganization else {
            throw Problem(
                .invalidIdentifier,
                detail: list == .blocked
                    ? "block an RPPS number (11 digits) or an organisation's FINESS number (9 digits), each with its Luhn check digit"
                    : "an RPPS number is 11 digits with a Luhn check digit")
        }
        let dossier = try await vault.dossier(for: ins)
        try await gatekeeper.authorize(context, .manageDossier, owner: ins, dossier: dossier)
        if add && list == .blocked && dossier.settings.hasFullRights(member) {
            throw Problem(
                .accessDenied,
                detail:
                    "the médecin traitant and administrators cannot be blocked; name another médecin traitant or revoke the administrator first"
            )
        }
        let updated = try await vault.updateSettings(for: ins) { settings in
            switch (list, isOrganization) {
            case (.authorized, _): Self.apply(add, member, to: &settings.authorized)
            case (.administrators, _):
                Self.apply(add, member, to: &settings.administrators)
                // An administrator has the médecin traitant's rights, which no block limits.
                if add { settings.blocked.remove(member) }
            case (.blocked, true): Self.apply(add, member, to: &settings.blockedOrganizations)
            case (.blocked, false): Self.apply(add, member, to: &settings.blocked)
            }
        }
        return try json(AccessView(updated.settings))
    }

    static func apply(_ add: Bool, _ member: String, to set: inout Set<String>) {
        if add { set.insert(member) } else { set.remove(member) }
    }

    private func view(_ dossier: DossierRecord, documentCount: Int) -> DossierView {
        DossierView(dossier, documentCount: documentCount, retention: vault.retentionRules)
    }
}

/// The lists of professionals a patient manages, as they appear in paths.
enum AccessList: String, CaseIterable, Sendable {
    case authorized
    case administrators
    case blocked
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
