import CoffreAPI
import CoffreCrypto
import CoffreDomain
import CoffreTesting
import Foundation
import Testing

@testable import CoffreServer

/// The trust directory, file by file: keys, scope files, and what is left out and why.
@Suite struct TrustDirectoryTests {
    @Test(arguments: [
        (#"{"roles": ["patient"]}"#, IssuerScope(roles: [.patient])),
        (
            #"{"roles": ["professional"], "modes": ["normal", "bris_de_glace"], "professions": ["10", "21"]}"#,
            IssuerScope(roles: [.professional], modes: [.normal, .bris_de_glace], professions: [.medecin, .pharmacien])
        ),
        (
            #"{"roles": ["professional", "patient"], "professions": ["*"]}"#,
            IssuerScope(roles: [.professional, .patient], professions: nil)
        ),
    ])
    func aScopeFileSaysWhatItsIssuerMayVouchFor(text: String, scope: IssuerScope) throws {
        #expect(try TrustDirectory.scope(from: text) == scope)
    }

    @Test(arguments: [
        ("[]", "is not a JSON object"),
        (#"{"modes": ["normal"]}"#, "roles is required"),
        (#"{"roles": []}"#, "roles must be a non-empty list of strings"),
        (#"{"roles": ["doctor"]}"#, "unknown role \"doctor\""),
        (#"{"roles": ["patient"], "mode": ["normal"]}"#, "unknown key \"mode\""),
        (#"{"roles": ["patient"], "modes": ["urgence"]}"#, "unknown mode \"urgence\""),
        (#"{"roles": ["professional"]}"#, "professions is required for the professional role"),
        (#"{"roles": ["professional"], "professions": ["1"]}"#, "\"1\" is not a two-digit profession code"),
        (#"{"roles": ["professional"], "professions": "*"}"#, "professions must be a non-empty list of strings"),
    ])
    func aScopeFileThatSaysLessThanItMustIsRefused(text: String, reason: String) {
        #expect(throws: TrustDirectory.ScopeFileError.self) { try TrustDirectory.scope(from: text) }
        do {
            _ = try TrustDirectory.scope(from: text)
        } catch {
            #expect(error.reason.hasPrefix(reason), "\(error.reason)")
        }
    }

    @Test func eachFileIsJudgedAloneAndOnlyValidIssuersAreTrusted() throws {
        let directory = try TemporaryDirectory(prefix: "coffre-trust")
        let arena = try SecureArena(slotCount: 4)
        func write(_ name: String, _ text: String) throws {
            try text.write(toFile: directory.path + "/" + name, atomically: true, encoding: .utf8)
        }
        func key() throws -> String {
            Hex.encode(try Ed25519SigningKey(seed: Ed25519SigningKey.generateSeed(), in: arena).publicKey.bytes) + "\n"
        }
        try write("portal.pub", key())
        try write("portal.scope", #"{"roles": ["patient"]}"#)
        try write("noscope.pub", key())
        try write("badscope.pub", key())
        try write("badscope.scope", #"{"roles": ["nobody"]}"#)
        try write("badkey.pub", "not a key")
        try write("badkey.scope", #"{"roles": ["patient"]}"#)
        try write("orphan.scope", #"{"roles": ["patient"]}"#)
        try write("dev.pub", key())
        try write("README", "ignored")

        let production = TrustDirectory.load(directory.path)
        #expect(production.store.issuers == ["portal"])
        #expect(
            production.problems == [
                "badkey.pub: does not hold a 32-byte Ed25519 key in hex",
                "badscope.scope: unknown role \"nobody\"",
                "dev.pub: no dev.scope says what this issuer may vouch for",
                "noscope.pub: no noscope.scope says what this issuer may vouch for",
                "orphan.scope: no orphan.pub holds this issuer's key",
            ])
        // In development mode the development issuer without a scope file vouches for all.
        let development = TrustDirectory.load(directory.path, developmentIssuer: "dev")
        #expect(development.store.issuers == ["dev", "portal"])
        #expect(development.store.issuer("dev")?.scope == .everything)
        // A broken scope file never falls back to that.
        try write("dev.scope", #"{"roles": "all"}"#)
        #expect(TrustDirectory.load(directory.path, developmentIssuer: "dev").store.issuers == ["portal"])
    }
}
